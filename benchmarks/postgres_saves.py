"""PostgreSQL saves through crmcore's recorder, next to ``eventsourcing``'s pipelined one in the same run.

    python benchmarks/postgres_saves.py [--url postgresql://postgres@127.0.0.1:5432/test] [--rounds 5]
                                        [--big-mb 17]

Each recorder gets its own fresh schema (``bench_saves_*``, dropped at the end). Each round runs every
case on both recorders, alternating which goes first:

- bulk: 10 saves of 5,000 events of 500 bytes (the shape of crmcore's bulk registration and ingestion);
- single: 1,000 saves of one event of 300 bytes (one command, one save);
- medium: 200 saves of 50 events of 300 bytes;
- big: one save of one ``--big-mb`` MB event - crmcore's recorder only: the pipelined one hangs forever
  on a save that size.

Printed: the median over rounds (events/s, saves/s or seconds) and crmcore's median over the stock one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from typing import Any
from uuid import uuid4

from _baseline import timed
from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, StoredEvent
from eventsourcing.utils import Environment

from crmcore.stores import parse_store_url

RECORDERS = {
    "crmcore": "crmcore._postgres:UnpipelinedPostgresApplicationRecorder",
    "stock": "eventsourcing.postgres:PostgresApplicationRecorder",
}


def events(count: int, size: int) -> list[StoredEvent]:
    return [StoredEvent(originator_id=uuid4(), originator_version=1, topic="bench:Event",
                        state=os.urandom(size)) for _ in range(count)]


def saves(recorder: ApplicationRecorder, batches: list[list[StoredEvent]]) -> Callable[[], None]:
    def run() -> None:
        for batch in batches:
            recorder.insert_events(batch)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("CRMCORE_TEST_POSTGRES_URL",
                                                        "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--big-mb", type=int, default=17)
    args = parser.parse_args()
    import psycopg

    schemas = {kind: f"bench_saves_{kind}_{uuid4().hex[:8]}" for kind in RECORDERS}
    opened: dict[str, tuple[ApplicationRecorder, InfrastructureFactory[Any]]] = {}
    results: dict[tuple[str, str], list[float]] = {}
    try:
        with psycopg.connect(args.url, autocommit=True) as conn:
            for schema in schemas.values():
                conn.execute(f'CREATE SCHEMA "{schema}"')
        for kind, topic in RECORDERS.items():
            env = parse_store_url(f"{args.url}?schema={schemas[kind]}").eventsourcing_env()
            env["APPLICATION_RECORDER_TOPIC"] = topic
            factory: InfrastructureFactory[Any] = InfrastructureFactory.construct(Environment("bench", env))
            opened[kind] = factory.application_recorder(), factory
        for n in range(args.rounds):
            kinds = list(RECORDERS) if n % 2 == 0 else list(RECORDERS)[::-1]
            for kind in kinds:
                recorder = opened[kind][0]
                bulk = [events(5000, 500) for _ in range(10)]
                results.setdefault(("bulk 5,000 x 500 B (events/s)", kind), []).append(
                    50_000 / timed(saves(recorder, bulk)))
                single = [events(1, 300) for _ in range(1000)]
                results.setdefault(("single 1 x 300 B (saves/s)", kind), []).append(
                    1000 / timed(saves(recorder, single)))
                medium = [events(50, 300) for _ in range(200)]
                results.setdefault(("medium 50 x 300 B (saves/s)", kind), []).append(
                    200 / timed(saves(recorder, medium)))
                if kind == "crmcore":
                    big = [events(1, args.big_mb * 1024 * 1024)]
                    results.setdefault((f"big 1 x {args.big_mb} MB (s)", kind), []).append(
                        timed(saves(recorder, big)))
            print(f"round {n + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for _, factory in opened.values():
            factory.close()
        with psycopg.connect(args.url, autocommit=True) as conn:
            for schema in schemas.values():
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    for case in dict.fromkeys(case for case, _ in results):
        medians = {
            kind: statistics.median(results[case, kind]) for kind in RECORDERS if (case, kind) in results
        }
        line = "  ".join(f"{kind} {value:10.1f}" for kind, value in medians.items())
        ratio = f"  crmcore/stock {medians['crmcore'] / medians['stock']:.2f}" if "stock" in medians else ""
        print(f"{case:32} {line}{ratio}")


if __name__ == "__main__":
    main()
