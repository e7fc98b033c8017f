"""Several processes updating the same parties at once, on SQLite and on PostgreSQL, lose no update.

A version conflict either is retried by the command (the default) or, when the caller gave
``expected_version``, surfaces as :class:`crmcore.ConcurrentUpdateError`, with nothing stored. Views
caught up by several processes at once apply every event exactly once.

The workers are separate processes (``spawn``), each with its own ``CRM`` on the same SQLite file or the
same PostgreSQL schema; their code is in ``tests/integration/_workers.py``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from crmcore import CRM, Stage
from crmcore.projections import PartiesView
from crmcore.projections.facts import PartyFactsView
from crmcore.projections.identity import IdentityView, MembershipsView
from tests.conftest import drop_schema, make_store_url
from tests.integration import _workers
from tests.integration._workers import EventCountView

pytestmark = pytest.mark.slow

CTX = multiprocessing.get_context("spawn")
#: Seconds the whole group of workers of one test may take before the test fails.
WORKERS_TIMEOUT = 120.0


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_store(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[str]:
    """A fresh store that several processes can open: an SQLite file or a PostgreSQL schema."""
    url, schema = make_store_url(str(request.param), os.fspath(tmp_path))
    try:
        yield url
    finally:
        if schema is not None:
            drop_schema(schema)


def run_workers(jobs: list[tuple[Any, tuple[Any, ...]]]) -> list[dict[str, Any]]:
    """Start one process per ``(target, args)``, wait for all, and return their reports (by worker number).

    Each target gets ``(queue, worker number, *args)``. A worker that raised fails the test at once with
    its traceback (the others are killed); one that hangs prints its stacks and is killed.
    """
    results: multiprocessing.Queue[dict[str, Any]] = CTX.Queue()
    processes = [
        CTX.Process(target=target, args=(results, n, *args), name=f"crm-worker-{n}", daemon=True)
        for n, (target, args) in enumerate(jobs)
    ]
    reports: list[dict[str, Any]] = []
    deadline = time.monotonic() + WORKERS_TIMEOUT
    try:
        for process in processes:
            process.start()
        while len(reports) < len(processes) and not any(r["error"] for r in reports):
            try:
                reports.append(results.get(timeout=0.5))
                continue
            except queue.Empty:
                pass
            if all(not p.is_alive() for p in processes):
                with contextlib.suppress(queue.Empty):
                    while len(reports) < len(processes):
                        reports.append(results.get(timeout=2))
                break
            if time.monotonic() > deadline:
                break
        for process in processes:
            process.join(timeout=10 if len(reports) == len(processes) else 0)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
        results.close()
    failures = [r["error"] for r in reports if r["error"]]
    assert not failures, "a worker failed:\n" + "\n".join(failures)
    if len(reports) < len(processes):
        codes = {p.name: p.exitcode for p in processes}
        pytest.fail(f"only {len(reports)} of {len(processes)} workers reported (exit codes: {codes})")
    return sorted(reports, key=lambda r: int(r["worker"]))


def test_retried_updates_from_several_processes_are_all_kept(shared_store: str) -> None:
    workers, updates_each = 3, 48
    with CRM(shared_store) as crm:
        hot = str(crm.register_party(kind="person", name="Hot", stage="lead", actor="setup"))
        cold = str(crm.register_party(kind="organization", name="Cold", stage="target", actor="setup"))
    # Three of every four updates go to one party: over 100 events, so a snapshot is taken mid-run.
    targets = [hot, hot, hot, cold]
    barrier, open_lock = CTX.Barrier(workers), CTX.Lock()

    job = (_workers.update_with_retries, (shared_store, open_lock, targets, updates_each, barrier))
    reports = run_workers([job] * workers)

    expected: dict[str, dict[str, str]] = defaultdict(dict)
    for report in reports:
        for party_id, key, value in report["done"]:
            expected[party_id][key] = value
    assert sum(len(traits) for traits in expected.values()) == workers * updates_each
    with CRM(shared_store) as crm:
        for party_id, traits in expected.items():
            party = crm.get_party(party_id)
            assert party.profile == traits  # every accepted update is there, and nothing else
            assert party.version == 1 + len(traits)  # one event per accepted update
            updated = [e for e in crm.timeline(party_id) if e.event == "ProfileUpdated"]
            assert Counter(k for e in updated for k in e.data["changes"]) == Counter(list(traits))
            assert [e.version for e in crm.timeline(party_id)] == list(range(1, party.version + 1))
        assert crm.get_party(hot).version > 100
        assert len(list(crm.changes())) == 2 + workers * updates_each
    rejected = sum(int(r["rejected"]) for r in reports)
    print(f"{workers * updates_each} updates; {rejected} surfaced as ConcurrentUpdateError after retries")


def test_updates_expecting_a_version_either_win_or_raise_a_typed_conflict(shared_store: str) -> None:
    workers, rounds = 4, 12
    with CRM(shared_store) as crm:
        party = str(crm.register_party(kind="person", name="Contested", stage="lead", actor="setup"))
    barrier, open_lock = CTX.Barrier(workers), CTX.Lock()

    job = (_workers.update_expecting_version, (shared_store, open_lock, party, rounds, barrier))
    reports = run_workers([job] * workers)

    by_round: dict[int, list[tuple[int, str, str, int | None]]] = defaultdict(list)
    for report in reports:
        for r, seen, outcome, after in report["outcomes"]:
            by_round[r].append((report["worker"], outcome, f"seen {seen}", after))
            assert seen == 1 + r  # everyone read after the previous round's single winner
            assert after in (None, seen + 1)
    winners = {}
    for r in range(rounds):
        ok = [worker for worker, outcome, _, _ in by_round[r] if outcome == "ok"]
        assert len(ok) == 1, f"round {r}: exactly one writer expecting version {1 + r} may win: {by_round[r]}"
        winners[f"w{ok[0]}_r{r}"] = r
    with CRM(shared_store) as crm:
        view = crm.get_party(party)
        assert view.profile == winners  # no lost update, no phantom
        assert view.version == 1 + rounds
        assert len(crm.timeline(party)) == 1 + rounds
        assert len(list(crm.changes())) == 1 + rounds


def test_views_caught_up_by_two_processes_apply_each_event_exactly_once(shared_store: str) -> None:
    parties, written_by_writer = 2500, 150  # more than one page (2,000) of notifications to catch up
    with CRM(shared_store, views=[EventCountView()]) as crm:
        assert crm.update_views() == 0  # the views exist (at position 0) before anything is written
        ids = [str(i) for i in crm.bulk_register(
            {"kind": "person", "name": f"Person {n}", "actor": "import"} for n in range(parties)
        )]
    barrier, open_lock, writers_done = CTX.Barrier(3), CTX.Lock(), CTX.Event()
    catcher = (_workers.catch_up_views, (shared_store, open_lock, barrier, writers_done))
    writer = (
        _workers.write_lifecycle_events,
        (shared_store, open_lock, ids[:written_by_writer], barrier, writers_done),
    )

    reports = run_workers([catcher, catcher, writer])

    with CRM(shared_store, views=[EventCountView()]) as crm:
        leftover = crm.update_views()  # whatever the last writes added after the workers' last pass
        changes = list(crm.changes())
        assert len(changes) == parties + 3 * written_by_writer
        # Exactly once, counted: the events applied by every runner add up to the events each view reads.
        built_in = (PartiesView, IdentityView, MembershipsView, PartyFactsView)
        topics = [{cls.__name__ for cls in view.event_classes} for view in built_in]
        topics.append(topics[-1])  # the segment_members projection reads the party events party_facts reads
        expected_applied = len(changes) + sum(1 for c in changes for t in topics if c.event in t)
        assert sum(int(r["applied"]) for r in reports[:2]) + leftover == expected_applied
        # Exactly once, in the rows: a view that counts each party's events has each count right.
        per_party = Counter(str(c.aggregate_id) for c in changes)
        counted = {row["id"]: row for row in crm.view_rows(EventCountView.name)}
        assert {party_id: row["n"] for party_id, row in counted.items()} == dict(per_party)
        assert all(row["n"] == row["last_version"] for row in counted.values())
        # The parties view agrees with the fold of the log.
        assert crm.party_counts() == crm.party_counts_as_of(datetime.now(UTC))
        counts_now = crm.party_counts()
        assert counts_now.total == parties
        leads, suspects = written_by_writer, parties - written_by_writer
        assert counts_now.by_stage == {Stage.LEAD: leads, Stage.SUSPECT: suspects}
        assert counts_now.unassigned == parties - written_by_writer
        summaries = {str(p.id): p for p in crm.parties(stage="lead")}
        assert set(summaries) == set(ids[:written_by_writer])
        for i, party_id in enumerate(ids[:written_by_writer]):
            assert summaries[party_id].owner == f"rep{i % 3}"
    print("catch-up passes per process:", [r["passes"] for r in reports[:2]])


def test_processes_opening_the_same_store_at_once(shared_store: str) -> None:
    """Several processes (web workers starting together, say) open an existing store at the same moment."""
    CRM(shared_store).close()  # the store exists: this is about opening, not creating
    workers, times = 4, 8
    barrier = CTX.Barrier(workers)

    reports = run_workers([(_workers.open_repeatedly, (shared_store, times, barrier))] * workers)

    failures = [failure for report in reports for failure in report["failures"]]
    assert not failures, f"{len(failures)} of {workers * times} openings failed: {sorted(set(failures))}"


def test_reports_ingested_by_several_processes_at_once_are_each_stored_once(shared_store: str) -> None:
    """Two processes ingest the same reports in the same order (their batches collide on the store's key),
    a third a shuffled half of them: every report is stored once, and the decisions read as one process's
    at every moment."""
    import random

    from tests.integration._campaigns import email_of, event, people, running_campaign

    with CRM(shared_store) as crm:
        ids = people(crm, 12)
        campaign = running_campaign(crm, ids)
    kinds = ["delivered", "opened", "clicked", "soft_bounce", "hard_bounce", "unsubscribed", "complaint"]
    events = [event(f"e{n}", campaign, ids[n % 12], kinds[n % 7], n / 3,
                    **({"link": "https://example.com/"} if kinds[n % 7] == "clicked" else {}))
              for n in range(240)]
    half = random.Random(5).sample(events, 120)
    barrier = CTX.Barrier(3)

    reports = run_workers([(_workers.ingest_reports, (shared_store, str(campaign), events, 4, barrier)),
                           (_workers.ingest_reports, (shared_store, str(campaign), events, 4, barrier)),
                           (_workers.ingest_reports, (shared_store, str(campaign), half, 3, barrier))])

    assert sum(r["stored"] for r in reports) == len(events)
    assert sum(r["duplicates"] for r in reports) == 2 * len(events) + len(half) - len(events)
    with CRM(shared_store) as crm:
        crm.run_policies()
        stored = Counter(c.aggregate_id for c in crm.changes() if c.aggregate_type == "Engagement")
        assert len(stored) == len(events)
        assert set(stored.values()) == {1}
        suppressed = {s.address_key for s in crm.suppressions()}
        with CRM("memory:") as alone:  # the same reports, ingested by one process
            again = people(alone, 12)
            same = running_campaign(alone, again)
            remap = dict(zip(ids, again, strict=True))
            alone.ingest([{**e, "campaign_id": same, "party_id": remap[e["party_id"]]} for e in events],
                         source="mailtool", actor="one")
            assert suppressed == {s.address_key for s in alone.suppressions()}
            moments = sorted({e["occurred_at"] for e in events})
            keys = [email_of(n) for n in range(12)]
            for moment in moments:  # the decisions in force read the same at every moment
                assert crm._suppressed(keys, moment) == alone._suppressed(keys, moment), moment
        unsubscribed = [e for p in ids for e in crm.consent_history(p) if e.status.value == "unsubscribed"]
        assert len(unsubscribed) == len({(e.party_id, e.external_id) for e in unsubscribed})
