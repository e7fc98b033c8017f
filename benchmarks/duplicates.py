"""Duplicate detection speed and accuracy on a labelled synthetic set, next to a plain baseline.

    python benchmarks/duplicates.py [--profile standard|hard|both] [--parties N] [--seed S] [--threshold T]

The set comes from ``crmcore.testing.synthetic.synthetic_parties`` (fixed seed; about 15% duplicates with
typos, swapped names, nicknames, transliterations, missing values, abbreviations, changed addresses).
Two profiles: ``standard`` (FEBRL-style: complete originals, each duplicate with one to three
modifications) and ``hard`` (duplicates changed in many ways at once, some sharing nothing but a name, and
look-alikes that are not duplicates); ``both`` (the default) runs one then the other. Two contestants run
on the same records in the same process:

1. crmcore: ``Detector().find(records)`` (blocking, comparisons, weights).
2. Baseline: exact-key grouping. Records sharing a normalised e-mail, phone, VAT number or folded name
   (``crmcore.identity`` keys) are paired.

Each prints records/s, precision, recall and F1 on pairs (a pair is right when both records describe
the same entity); the ratios compare crmcore with the baseline. Last comes the share of true pairs that
agree on nothing but a name (which no detector can tell from namesakes), and crmcore's recall on the
others.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from itertools import combinations

from crmcore.identity import OrganizationName, PersonName
from crmcore.matching import Detector, MatchRecord
from crmcore.testing.synthetic import PROFILES, synthetic_parties

#: Fields whose agreement is more than a name.
IDENTIFIERS = frozenset(
    {"email", "email_local", "phone", "birth_date", "address", "vat", "web_link", "company"}
)


def exact_key_pairs(records: list[MatchRecord]) -> set[tuple[str, str]]:
    """The baseline: pairs of records sharing an e-mail, a phone, a VAT number or a folded name."""
    groups: dict[str, list[str]] = defaultdict(list)
    for r in records:
        keys = [f"e:{e}" for e in r.emails] + [f"t:{p}" for p in r.phones]
        if r.vat:
            keys.append(f"v:{r.vat}")
        if r.kind == "person" and r.given_name and r.family_name:
            keys.append("n:" + PersonName(given_name=r.given_name, family_name=r.family_name).key)
        elif r.kind == "person" and r.name:
            keys.append("n:" + " ".join(reversed(r.name.lower().split())))
        elif r.name:
            keys.append("o:" + OrganizationName(name=r.name).key)
        for key in keys:
            groups[f"{r.kind}:{key}"].append(r.id)
    pairs: set[tuple[str, str]] = set()
    for ids in groups.values():
        pairs.update(combinations(sorted(set(ids)), 2))
    return pairs


def scores(found: set[tuple[str, str]], truth: set[tuple[str, str]]) -> tuple[float, float, float]:
    """Precision, recall and F1 of ``found`` pairs against ``truth``."""
    right = len(found & truth)
    precision = right / len(found) if found else 1.0
    recall = right / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def run(profile: str, parties: int, seed: int, threshold: float | None) -> None:
    """Generate one set, run both contestants on it and print their results."""
    started = time.perf_counter()
    data = synthetic_parties(parties, seed=seed, profile=profile)
    truth = data.true_pairs()
    duplicates = len(data.records) - len(set(data.entity_of.values()))
    print(
        f"[{profile}] set: {len(data.records)} records, {duplicates} duplicates "
        f"({duplicates / len(data.records):.1%}), {len(truth)} true pairs, seed {seed}, "
        f"generated in {time.perf_counter() - started:.1f}s"
    )

    detector = Detector() if threshold is None else Detector(threshold=threshold)
    started = time.perf_counter()
    candidates = detector.fitted(data.records).find(data.records)
    crm_seconds = time.perf_counter() - started
    crm_pairs = {(c.a, c.b) for c in candidates}

    started = time.perf_counter()
    base_pairs = exact_key_pairs(data.records)
    base_seconds = time.perf_counter() - started

    crm_rate, base_rate = len(data.records) / crm_seconds, len(data.records) / base_seconds
    crm_p, crm_r, crm_f1 = scores(crm_pairs, truth)
    base_p, base_r, base_f1 = scores(base_pairs, truth)
    print(
        f"[{profile}] crmcore Detector (threshold {detector.threshold}): {crm_seconds:.1f}s, "
        f"{crm_rate:,.0f} records/s, precision {crm_p:.4f}, recall {crm_r:.4f}, F1 {crm_f1:.4f} "
        f"({len(crm_pairs)} pairs)"
    )
    print(
        f"[{profile}] baseline exact keys: {base_seconds:.2f}s, {base_rate:,.0f} records/s, "
        f"precision {base_p:.4f}, recall {base_r:.4f}, F1 {base_f1:.4f} ({len(base_pairs)} pairs)"
    )
    print(
        f"[{profile}] ratio_vs_exact_keys: speed {crm_rate / base_rate:.3f}, "
        f"F1 {crm_f1 / base_f1 if base_f1 else 0:.3f}"
    )

    by_id = {r.id: r for r in data.records}
    plain = Detector()
    identified = {
        (a, b)
        for a, b in truth
        if any(
            r.field in IDENTIFIERS and r.level in ("exact", "close")
            for r in plain.compare(by_id[a], by_id[b]).reasons
        )
    }
    names_only = 1 - len(identified) / len(truth) if truth else 0.0
    found = len(crm_pairs & identified) / len(identified) if identified else 1.0
    print(
        f"[{profile}] true pairs agreeing on nothing but a name: {names_only:.1%}; "
        f"crmcore recall on the others: {found:.4f}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on each profile asked for and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile", choices=[*PROFILES, "both"], default="both", help="synthetic set profile (default both)"
    )
    parser.add_argument("--parties", type=int, default=100_000, help="records in the set (default 100000)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic set (default 7)")
    parser.add_argument("--threshold", type=float, default=None, help="match probability threshold")
    args = parser.parse_args(argv)
    for profile in PROFILES if args.profile == "both" else (args.profile,):
        run(profile, args.parties, args.seed, args.threshold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
