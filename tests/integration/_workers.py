"""Work done in separate processes by the concurrency tests (spawned processes import this module).

Each worker opens its own :class:`crmcore.CRM` on the shared store, waits at a barrier so that the
processes really overlap, does its part and puts one report (a dict) on the queue. Any exception other
than the ones a caller is promised (:class:`crmcore.ConcurrentUpdateError`) is reported with its
traceback, so the test shows it instead of hanging or losing it.
"""

from __future__ import annotations

import faulthandler
import traceback
from collections.abc import Callable
from typing import Any, ClassVar

from eventsourcing.domain import DomainEventProtocol

from crmcore import CRM, ConcurrentUpdateError
from crmcore.aggregates.party import Party
from crmcore.projections import Row, View

#: How long a worker waits at a barrier before giving up (a peer died or hung).
BARRIER_TIMEOUT = 60.0
#: A worker still running after this many seconds prints every thread's stack and exits.
HANG_TIMEOUT = 90.0
#: Every concrete event class of a party.
PARTY_EVENT_CLASSES: tuple[type[Any], ...] = (
    Party.Registered,
    Party.Engaged,
    Party.Qualified,
    Party.Disqualified,
    Party.Reopened,
    Party.Converted,
    Party.Assigned,
    Party.Linked,
    Party.ProfileUpdated,
    Party.SetAside,
    Party.Restored,
)


class EventCountView(View):
    """Counts each party's events: unlike ``parties``, applying an event twice changes the result."""

    name: ClassVar[str] = "event_counts"
    version: ClassVar[int] = 1
    event_classes: ClassVar[tuple[type[Any], ...]] = PARTY_EVENT_CLASSES

    def key(self, event: DomainEventProtocol[Any]) -> str:
        return str(event.originator_id)

    def evolve(self, row: Row | None, event: DomainEventProtocol[Any]) -> Row | None:
        count = (row or {}).get("n", 0) + 1
        return {"id": str(event.originator_id), "n": count, "last_version": event.originator_version}


def _open(url: str, open_lock: Any, **options: Any) -> CRM:
    """Open the store; ``open_lock`` is unused now that opening is safe from many processes at once.

    (``test_processes_opening_the_same_store_at_once`` covers that on its own.)
    """
    del open_lock
    return CRM(url, **options)


def _reporting(work: Callable[..., dict[str, Any]]) -> Callable[..., None]:
    """Run ``work(*args)`` and put its report, or the traceback of what it raised, on ``queue``."""

    def run(queue: Any, worker: int, *args: Any) -> None:
        faulthandler.dump_traceback_later(HANG_TIMEOUT, exit=True)
        try:
            report = work(worker, *args)
        except BaseException as error:
            detail = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
            queue.put({"worker": worker, "error": detail})
            raise
        queue.put({"worker": worker, "error": None, **report})

    run.__name__ = run.__qualname__ = work.__name__.lstrip("_")
    return run


def _update_with_retries(
    worker: int, url: str, open_lock: Any, party_ids: list[str], count: int, barrier: Any
) -> dict[str, Any]:
    """``count`` profile updates, each with its own trait key, relying on the command's own retries.

    When the retries are used up the caller gets :class:`ConcurrentUpdateError`; this caller then issues
    the update again with a new value, so a rejected attempt that was stored after all would show up as
    an extra event.
    """
    done: list[tuple[str, str, str]] = []
    rejected = 0
    with _open(url, open_lock) as crm:
        barrier.wait(BARRIER_TIMEOUT)
        for i in range(count):
            party_id = party_ids[i % len(party_ids)]
            key = f"w{worker}_n{i}"
            attempt = 0
            while True:
                value = f"attempt{attempt}"
                try:
                    crm.update_profile(party_id, changes={key: value}, actor=f"worker-{worker}")
                except ConcurrentUpdateError:
                    rejected += 1
                    attempt += 1
                    if attempt > 100:
                        raise
                    continue
                break
            done.append((party_id, key, value))
    return {"done": done, "rejected": rejected}


def _update_expecting_version(
    worker: int, url: str, open_lock: Any, party_id: str, rounds: int, barrier: Any
) -> dict[str, Any]:
    """Per round: read the version, wait for everyone to have read it, then update expecting it.

    Returns each round's outcome: ``(round, version seen, "ok" | "conflict", version after or None)``.
    """
    outcomes: list[tuple[int, int, str, int | None]] = []
    with _open(url, open_lock) as crm:
        barrier.wait(BARRIER_TIMEOUT)
        for r in range(rounds):
            seen = crm.get_party(party_id).version
            barrier.wait(BARRIER_TIMEOUT)  # everyone has read before anyone writes
            try:
                after = crm.update_profile(
                    party_id, changes={f"w{worker}_r{r}": r}, actor=f"worker-{worker}", expected_version=seen
                )
            except ConcurrentUpdateError:
                outcomes.append((r, seen, "conflict", None))
            else:
                outcomes.append((r, seen, "ok", after.version))
            barrier.wait(BARRIER_TIMEOUT)  # every write of this round is done before the next reads
    return {"outcomes": outcomes}


def _catch_up_views(
    worker: int, url: str, open_lock: Any, barrier: Any, writers_done: Any
) -> dict[str, Any]:
    """Catch every view up, again and again, while writers write; once more after they are done."""
    applied = 0
    passes = 0
    with _open(url, open_lock, views=[EventCountView()]) as crm:
        barrier.wait(BARRIER_TIMEOUT)
        while True:
            finished = writers_done.is_set()
            applied += crm.update_views()
            passes += 1
            if finished:
                break
    return {"applied": applied, "passes": passes}


def _write_lifecycle_events(
    worker: int, url: str, open_lock: Any, party_ids: list[str], barrier: Any, writers_done: Any
) -> dict[str, Any]:
    """Engage, assign and update each party (the profile update is an event ``parties`` ignores)."""
    written = 0
    try:
        with _open(url, open_lock) as crm:
            barrier.wait(BARRIER_TIMEOUT)
            for i, party_id in enumerate(party_ids):
                crm.engage(party_id, channel="email", actor=f"writer-{worker}")
                crm.assign(party_id, owner=f"rep{i % 3}", actor=f"writer-{worker}")
                crm.update_profile(party_id, changes={"touched": True}, actor=f"writer-{worker}")
                written += 3
    finally:
        writers_done.set()
    return {"written": written}


def _open_repeatedly(worker: int, url: str, times: int, barrier: Any) -> dict[str, Any]:
    """Open (and close) the store ``times`` times, each time together with the other processes."""
    failures: list[str] = []
    for _ in range(times):
        barrier.wait(BARRIER_TIMEOUT)
        try:
            CRM(url).close()
        except Exception as error:
            failures.append(f"{type(error).__module__}.{type(error).__name__}: {error}")
    return {"failures": failures}


def _ingest_reports(
    worker: int, url: str, campaign_id: str, events: list[dict[str, Any]], calls: int, barrier: Any,
) -> dict[str, Any]:
    """Ingest ``events`` in ``calls`` calls of small batches, starting together with the other workers."""
    stored = duplicates = 0
    with CRM(url) as crm:
        barrier.wait(BARRIER_TIMEOUT)
        size = -(-len(events) // calls)
        for start in range(0, len(events), size):
            report = crm.ingest(events[start : start + size], source="mailtool", actor=f"worker-{worker}",
                                batch_size=20)
            stored += report.stored
            duplicates += report.duplicates
    return {"stored": stored, "duplicates": duplicates}


update_with_retries = _reporting(_update_with_retries)
ingest_reports = _reporting(_ingest_reports)
update_expecting_version = _reporting(_update_expecting_version)
catch_up_views = _reporting(_catch_up_views)
write_lifecycle_events = _reporting(_write_lifecycle_events)
open_repeatedly = _reporting(_open_repeatedly)

