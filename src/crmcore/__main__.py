"""The command line: ``python -m crmcore verify STORE`` proves a store's log was not altered.

    python -m crmcore head STORE                 print the log's head (keep it outside the database)
    python -m crmcore verify STORE [--anchor F]  walk the log; exit 0 when it is as written, 1 otherwise

``STORE`` is a store URL (``sqlite:///crm.db``, ``postgresql://…``); the audit key comes from
``$CRMCORE_AUDIT_KEY`` (and the cipher key, if the store is encrypted, from ``$CRMCORE_CIPHER_KEY``).
``--anchor`` names a file holding a head printed earlier by ``head`` (JSON). ``--json`` prints the result
as JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from crmcore.application import CRM
from crmcore.models import LogHead
from crmcore.stores import AUDIT_KEY_ENV_VAR, CIPHER_KEY_ENV_VAR, parse_store_url

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m crmcore", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    head = commands.add_parser("head", help="print the log's head, to keep outside the database")
    head.add_argument("store", help="the store URL")
    verify = commands.add_parser("verify", help="prove the stored log is as it was written")
    verify.add_argument("store", help="the store URL")
    verify.add_argument("--anchor", type=Path, help="a file holding a head printed earlier (JSON)")
    verify.add_argument("--json", action="store_true", help="print the whole result as JSON")
    args = parser.parse_args(argv)

    keys = {name: os.environ[var] for name, var in (("audit_key", AUDIT_KEY_ENV_VAR),
                                                    ("cipher_key", CIPHER_KEY_ENV_VAR)) if var in os.environ}
    with CRM(parse_store_url(args.store, **keys)) as crm:
        if args.command == "head":
            print(crm.log_head().model_dump_json())
            return 0
        anchor = LogHead.model_validate_json(args.anchor.read_text()) if args.anchor else None
        result = crm.verify_log(anchor=anchor)
    if args.json:
        print(result.model_dump_json(indent=1))
    else:
        print(f"{result.events:,} events, {result.chained:,} chain rows; head {result.head.position} "
              f"{result.head.link}")
        for problem in result.problems:
            where = f" ({problem.originator_id} v{problem.version})" if problem.originator_id else ""
            print(f"{problem.kind} at position {problem.position}{where}: {problem.detail}")
        print("the log is as it was written" if result.ok else f"{len(result.problems)} problem(s) found")
    return 0 if result.ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
