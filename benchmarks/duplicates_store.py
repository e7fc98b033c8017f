"""Duplicate detection across a whole store, next to the detector run on the same records in memory.

    python benchmarks/duplicates_store.py [--parties 100000] [--seed 7] [--store sqlite|memory]

The labelled synthetic set (``crmcore.testing.synthetic``) is registered with ``bulk_register``: names,
e-mail addresses, phones, birth dates, addresses, VAT numbers and web links as identity values. A record
repeating an e-mail address, phone or VAT number already taken would be refused on entry
(``DuplicateParty``): it is counted as such (and whether it really was a duplicate) and not registered.
The rest is what slipped past entry; then, in the same run:

1. crmcore: ``crm.duplicates()`` on a fresh ``CRM`` over the store — reading every party's identity from the
   ``party_identity`` view (built from the log first), fitting the detector and finding the pairs.
2. Baseline: the detector alone, fitted and run on the same records already in memory.

Each prints parties/s, precision, recall and F1 on pairs; the ratio says what reading the store costs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from crmcore import CRM, EmailAddress, InvalidInput, PhoneNumber, PostalAddress, VatNumber, WebLink
from crmcore.matching import Detector, MatchRecord
from crmcore.testing.synthetic import synthetic_parties


def registration(record: MatchRecord, taken: set[str]) -> dict[str, Any] | None:
    """A registration row holding the record's valid values, or None if entry would refuse it."""
    row: dict[str, Any] = {"kind": record.kind, "actor": "benchmark"}
    if record.kind == "person":
        if record.given_name and record.family_name:
            row["given_name"], row["family_name"] = record.given_name[:100], record.family_name[:100]
        row["name"] = (record.name or " ".join(p for p in (record.given_name, record.family_name) if p)
                       or record.id)[:200]
        if record.organization_name:
            row["organization_name"] = record.organization_name[:200]
        if record.birth_date:
            row["birth_date"] = record.birth_date
    else:
        row["name"] = (record.name or record.organization_name or record.id)[:200]
        if record.vat and _valid(VatNumber, record.vat):
            row["vat_number"] = record.vat
    emails = [e for e in record.emails if _valid(EmailAddress, e)]
    phones = [p for p in record.phones if _valid(PhoneNumber, p)]
    keys = {f"email:{e}" for e in emails} | {f"phone:{p}" for p in phones}
    if "vat_number" in row:
        keys.add(f"vat:{record.vat}")
    if keys & taken:
        return None
    taken.update(keys)
    if emails:
        row["emails"] = emails
    if phones:
        row["phones"] = phones
    links = [w if "://" in w else f"https://{w}" for w in record.web_links]
    links = [w for w in links if _valid(WebLink, w)]
    if links:
        row["web_links"] = links
    address = {"country": record.country or "IT", "street": record.street,
               "street_number": record.house_number,
               "postcode": record.postcode, "locality": record.locality}
    if record.street and record.postcode and record.locality and _valid(PostalAddress, address):
        row["address"] = address
    return row


def _valid(model: Any, value: Any) -> bool:
    try:
        model.parse(value)
    except InvalidInput:
        return False
    return True


def scores(found: set[tuple[str, str]], truth: set[tuple[str, str]]) -> tuple[float, float, float]:
    """Precision, recall and F1 of ``found`` pairs against ``truth``."""
    right = len(found & truth)
    precision = right / len(found) if found else 1.0
    recall = right / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parties", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    args = parser.parse_args()

    synthetic = synthetic_parties(args.parties, seed=args.seed)
    taken: set[str] = set()
    entered = [(r, registration(r, taken)) for r in synthetic.records]
    kept = [r for r, row in entered if row is not None]
    rows = [row for _, row in entered if row is not None]
    refused = {r.id for r, row in entered if row is None}
    everything = synthetic.true_pairs()
    caught = {p for p in everything if refused & set(p)}
    refused_right = {i for i in refused if any(i in p for p in caught)}
    print(f"refused on entry (identifier already taken): {len(refused):,} records, "
          f"{len(refused_right):,} of them true duplicates")
    with tempfile.TemporaryDirectory(prefix="crmcore-dup-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}" if args.store == "sqlite" else "memory:"
        with CRM(url) as writer:
            started = time.perf_counter()
            ids = writer.bulk_register(rows, batch_size=5000)
            print(f"registered {len(ids):,} parties in {time.perf_counter() - started:.1f} s")
            label = {str(party): record.id for party, record in zip(ids, kept, strict=True)}
            if args.store == "memory":
                reader = writer
                crmcore_seconds, found = _timed_store(reader)
            else:
                with CRM(url) as reader:
                    crmcore_seconds, found = _timed_store(reader)
            stored_records = writer._identity_records()  # the same records, for the in-memory baseline
    truth = {p for p in everything if not refused & set(p)}
    found_pairs = {tuple(sorted((label[str(a)], label[str(b)]))) for a, b in found}
    renamed = [_relabel(r, label[r.id]) for r in stored_records]
    started = time.perf_counter()
    detector = Detector().fitted(renamed)
    baseline_pairs = {(c.a, c.b) for c in detector.find(renamed)}
    baseline_seconds = time.perf_counter() - started

    n = len(kept)
    for name, seconds, pairs in (("crmcore (store)", crmcore_seconds, found_pairs),
                                 ("detector in memory", baseline_seconds, baseline_pairs)):
        precision, recall, f1 = scores(pairs, truth)  # type: ignore[arg-type]
        print(f"{name:>20}: {seconds:6.1f} s  {n / seconds:9,.0f} parties/s  precision {precision:.3f}  "
              f"recall {recall:.3f}  F1 {f1:.3f}")
    print(f"ratio (store / in memory, parties/s): {baseline_seconds / crmcore_seconds:.2f}")


def _timed_store(crm: CRM) -> tuple[float, list[tuple[Any, Any]]]:
    started = time.perf_counter()
    report = crm.duplicates()
    return time.perf_counter() - started, [(m.party_id, m.other_id) for m in report]


def _relabel(record: MatchRecord, label: str) -> MatchRecord:
    fields = {f: getattr(record, f) for f in record.__dataclass_fields__}
    return MatchRecord(**{**fields, "id": label})


if __name__ == "__main__":
    main()
