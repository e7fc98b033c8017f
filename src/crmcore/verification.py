"""Proving the stored log was not altered: a walk of the events and their chain (design 07 § 2).

:func:`verify_chain` reads the events (as stored: originator id, version, topic, bytes) and the chain rows
in position order, a page of each at a time, recomputes every link under the audit key and reports each
place where the log is not as it was written, located by position. After a problem the walk goes on from
the stored link, so one altered event is one problem: when the next link only verifies from the link
recomputed for it, it was the chain row that was altered, and the problem says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import Application, project_aggregate

from crmcore._chain import GENESIS, ChainRow, link_of
from crmcore.models import LogHead, LogProblem, LogVerification

__all__ = ["ChainedRecorder", "log_head", "verify_chain", "verify_snapshots"]

#: How many events (and chain rows) one read takes.
PAGE = 5_000


class ChainedRecorder(Protocol):
    """What a recorder keeping the chain offers (crmcore's recorders for every store)."""

    def chain_head(self) -> tuple[int, bytes]: ...

    def select_chain(self, after: int, limit: int) -> list[ChainRow]: ...

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Any = (), *, inclusive_of_start: bool = True) -> Any: ...


def log_head(recorder: ChainedRecorder) -> LogHead:
    """The chain's last link."""
    position, link = recorder.chain_head()
    return LogHead(position=position, link=link.hex())


def verify_chain(recorder: ChainedRecorder, key: bytes, anchor: LogHead | None = None) -> LogVerification:
    """Walk the whole log and its chain under ``key``; hold the chain to ``anchor`` if given."""
    problems: list[LogProblem] = []
    events = _events(recorder)
    chain = _chain(recorder)
    event, row = next(events, None), next(chain, None)
    expected_prev, candidates = 0, [GENESIS]
    counted_events = counted_rows = 0
    anchor_seen = False
    # events without a chain row since the last row, with the links they would have had after it: if the
    # next row follows one of them, its chain row was deleted and the walk goes on through it
    unchained: dict[int, list[bytes]] = {}
    while event is not None or row is not None:
        if row is None or (event is not None and event[0] < row[0]):
            assert event is not None
            problems.append(_problem("unchained", event, "an event with no chain row: written around the "
                                     "chain, or its chain row was deleted"))
            unchained[event[0]] = _links(key, candidates, expected_prev, event)
            counted_events += 1
            event = next(events, None)
            continue
        counted_rows += 1
        position, prev, link = row
        if anchor is not None and position == anchor.position:
            anchor_seen = True
            if link.hex() != anchor.link:
                problems.append(LogProblem(kind="head_mismatch", position=position, detail=(
                    "the chain's link here differs from the anchor: the chain was recomputed")))
        if prev in unchained:  # its predecessor lost its chain row (reported): go on through it
            expected_prev, candidates = prev, unchained[prev]
        unchained.clear()
        if prev != expected_prev:
            kind: Any = "removed" if prev > expected_prev else "out_of_order"
            where = prev if kind == "removed" else position
            problems.append(LogProblem(kind=kind, position=where, detail=(
                f"the chain row at {position} follows {prev}, the walk came from {expected_prev}"
                + (": the event there and its chain row are gone" if kind == "removed" else ""))))
        if event is None or row[0] < event[0]:  # a chain row whose event is gone
            problems.append(LogProblem(kind="removed", position=position,
                                       detail="a chain row whose event is gone"))
            expected_prev, candidates = position, [link]
            row = next(chain, None)
            continue
        counted_events += 1
        if prev == expected_prev and candidates:
            computed = _links(key, candidates, prev, event)
            if computed[0] != link:
                if len(computed) > 1 and computed[1] == link:  # the last problem was its chain row's link
                    problems[-1] = problems[-1].model_copy(update={"detail": (
                        "the chain row's link was altered (the event is as written)")})
                else:
                    problems.append(_problem("altered", event, (
                        "the event's id, version, topic or bytes are not those the chain recorded")))
                    candidates = [link, computed[0]]
                    expected_prev = position
                    event, row = next(events, None), next(chain, None)
                    continue
        expected_prev, candidates = position, [link]
        event, row = next(events, None), next(chain, None)
    head = log_head(recorder)
    if anchor is not None and not anchor_seen:
        problems.append(LogProblem(kind="head_mismatch", position=anchor.position, detail=(
            "the chain does not reach the anchor's position: events were removed from the end")))
    problems.sort(key=lambda p: p.position)
    return LogVerification(ok=not problems, events=counted_events, chained=counted_rows, head=head,
                           anchor=anchor, problems=problems)


def verify_snapshots(app: Application[UUID]) -> tuple[int, list[LogProblem]]:
    """Check every stored snapshot against its aggregate replayed from its events up to its version: a
    snapshot read instead of those events must say the same. Returns how many were checked and the
    problems (``snapshot``, position 0: snapshots are not in the log)."""
    store = app.snapshots
    if store is None:
        return 0, []
    checked, problems = 0, []
    for originator in _snapshot_originators(store.recorder):
        try:
            snapshots = list(store.get(originator))
        except Exception as error:  # undecodable: its bytes were changed
            problems.append(_snapshot_problem(originator, None, f"a snapshot cannot be read: {error!r}"))
            continue
        for snapshot in snapshots:
            checked += 1
            version = snapshot.originator_version
            replayed = project_aggregate(None, app.events.get(originator, lte=version))
            if replayed is None or _state(snapshot.mutate(None)) != _state(replayed):
                problems.append(_snapshot_problem(originator, version, (
                    "the snapshot does not say what the events up to its version say")))
    return checked, problems


def _state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def _snapshot_problem(originator: UUID, version: int | None, detail: str) -> LogProblem:
    return LogProblem(kind="snapshot", position=0, originator_id=originator, version=version, detail=detail)


def _snapshot_originators(recorder: Any) -> list[UUID]:
    """The aggregates with a snapshot."""
    held = getattr(recorder, "_stored_events", None)
    if held is not None and not hasattr(recorder, "datastore"):  # the memory store
        return sorted({UUID(str(s.originator_id)) for s in held}, key=str)
    table = recorder.events_table_name
    if hasattr(recorder.datastore, "schema"):  # PostgreSQL
        from psycopg.rows import tuple_row
        from psycopg.sql import SQL, Identifier

        sql = SQL("SELECT DISTINCT originator_id FROM {0}.{1}").format(
            Identifier(recorder.datastore.schema), Identifier(table))
        with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(sql)
            return sorted((UUID(str(r[0])) for r in curs.fetchall()), key=str)
    with recorder.datastore.transaction(commit=False) as c:
        c.execute(f"SELECT DISTINCT originator_id FROM {table}")
        return sorted((UUID(str(r[0])) for r in c.fetchall()), key=str)


def _links(
    key: bytes, candidates: list[bytes], prev: int, event: tuple[int, Any, int, str, bytes],
) -> list[bytes]:
    """The links ``event`` has after ``prev`` from each candidate previous link."""
    position, originator_id, version, topic, state = event
    return [link_of(key, c, prev, position, originator_id, version, topic, state) for c in candidates]


def _problem(kind: Any, event: tuple[int, Any, int, str, bytes], detail: str) -> LogProblem:
    try:
        originator: UUID | None = UUID(str(event[1]))
    except ValueError:
        originator = None
    return LogProblem(kind=kind, position=event[0], originator_id=originator, version=event[2], detail=detail)


def _events(recorder: ChainedRecorder) -> Iterator[tuple[int, Any, int, str, bytes]]:
    after = 0
    while True:
        page = recorder.select_notifications(start=after, limit=PAGE, inclusive_of_start=False)
        if not page:
            return
        for n in page:
            yield (n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state))
        after = page[-1].id


def _chain(recorder: ChainedRecorder) -> Iterator[ChainRow]:
    after = 0
    while True:
        page = recorder.select_chain(after, PAGE)
        if not page:
            return
        yield from page
        after = page[-1][0]
