"""Loading many aggregates at once, for the bulk paths (the clean-up and its revert).

What ``repository.get`` does for one aggregate — its latest snapshot, then the events after it, each
decoded by the application's mapper and applied in version order — done for a chunk of ids per query on
SQLite and PostgreSQL: two queries a chunk (snapshots, events) instead of two an aggregate, and no
per-event runtime protocol check. Other stores load one aggregate at a time through the repository.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import AggregateRecorder, StoredEvent

__all__ = ["CHUNK", "load_many", "positions_of"]

#: How many aggregates one query reads.
CHUNK = 500

#: Selects the stored events (or snapshots) of some aggregates, ordered by aggregate then version.
Select = Callable[[Sequence[UUID]], list[StoredEvent]]


def load_many(app: Application[UUID], ids: Iterable[UUID], *, chunk_size: int = CHUNK) -> dict[UUID, Any]:
    """The aggregates of ``ids`` (at their latest version) by id; an id with no stored event is left out."""
    wanted = list(dict.fromkeys(ids))
    events = _selector(app.recorder)
    snapshots = _selector(app.snapshots.recorder) if app.snapshots is not None else None
    if events is None or (app.snapshots is not None and snapshots is None):
        return _one_by_one(app, wanted)
    to_event: Callable[[StoredEvent], Any] = app.mapper.to_domain_event
    found: dict[UUID, Any] = {}
    for start in range(0, len(wanted), chunk_size):
        chunk = wanted[start : start + chunk_size]
        latest: dict[Any, StoredEvent] = {}
        for snapshot in snapshots(chunk) if snapshots is not None else ():
            latest[snapshot.originator_id] = snapshot  # ordered by version: the last is the latest
        aggregates: dict[Any, Any] = {
            originator: to_event(snapshot).mutate(None) for originator, snapshot in latest.items()}
        for stored in events(chunk):
            originator = stored.originator_id
            held = latest.get(originator)
            if held is None or stored.originator_version > held.originator_version:
                aggregates[originator] = to_event(stored).mutate(aggregates.get(originator))
        found.update((i, a) for i, a in aggregates.items() if a is not None)
    return found


def _one_by_one(app: Application[UUID], ids: Sequence[UUID]) -> dict[UUID, Any]:
    found: dict[UUID, Any] = {}
    for originator in ids:
        try:
            found[originator] = app.repository.get(originator)
        except AggregateNotFoundError:
            continue
    return found


def _selector(recorder: AggregateRecorder) -> Select | None:
    """A batched select for ``recorder`` (SQLite or PostgreSQL), None for any other store."""
    from eventsourcing.sqlite import SQLiteAggregateRecorder

    if isinstance(recorder, SQLiteAggregateRecorder):
        return _sqlite_select(recorder)
    try:
        from eventsourcing.postgres import PostgresAggregateRecorder
    except ImportError:  # pragma: no cover - psycopg not installed
        return None
    if isinstance(recorder, PostgresAggregateRecorder):
        return _postgres_select(recorder)
    return None


def _sqlite_select(recorder: Any) -> Select:
    table, convert = recorder.events_table_name, recorder.convert_originator_id

    def select(ids: Sequence[UUID]) -> list[StoredEvent]:
        marks = ",".join("?" * len(ids))
        sql = (f"SELECT originator_id, originator_version, topic, state FROM {table} "
               f"WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version")
        with recorder.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None
            cursor.execute(sql, [i.hex for i in ids])
            return [StoredEvent(originator_id=convert(r[0]), originator_version=r[1], topic=r[2], state=r[3])
                    for r in cursor.fetchall()]

    return select


def _postgres_select(recorder: Any) -> Select:
    from psycopg.rows import tuple_row
    from psycopg.sql import SQL, Identifier

    datastore = recorder.datastore
    table = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(recorder.events_table_name))
    sql = SQL("SELECT originator_id, originator_version, topic, state FROM {} WHERE originator_id = ANY(%s) "
              "ORDER BY originator_id, originator_version").format(table)

    def select(ids: Sequence[UUID]) -> list[StoredEvent]:
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(sql, [list(ids)])
            return [StoredEvent(originator_id=r[0], originator_version=r[1], topic=r[2], state=bytes(r[3]))
                    for r in cursor.fetchall()]

    return select


def positions_of(app: Application[UUID], ids: Iterable[UUID], *, chunk_size: int = CHUNK) -> dict[
        tuple[UUID, int], int]:
    """The log position of every stored event of the aggregates ``ids``, by (aggregate id, version)."""
    wanted = list(dict.fromkeys(ids))
    recorder: Any = app.recorder
    found: dict[tuple[UUID, int], int] = {}
    from eventsourcing.sqlite import SQLiteAggregateRecorder

    if isinstance(recorder, SQLiteAggregateRecorder):
        for start in range(0, len(wanted), chunk_size):
            chunk = wanted[start : start + chunk_size]
            sql = (f"SELECT rowid, originator_id, originator_version FROM {recorder.events_table_name} "
                   f"WHERE originator_id IN ({','.join('?' * len(chunk))})")
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(sql, [i.hex for i in chunk])
                found.update(((UUID(str(r[1])), int(r[2])), int(r[0])) for r in c.fetchall())
        return found
    if hasattr(recorder, "datastore") and hasattr(recorder.datastore, "schema"):  # PostgreSQL
        from psycopg.rows import tuple_row
        from psycopg.sql import SQL, Identifier

        query = SQL("SELECT notification_id, originator_id, originator_version FROM {0}.{1} "
                    "WHERE originator_id = ANY(%s)").format(Identifier(recorder.datastore.schema),
                                                         Identifier(recorder.events_table_name))
        for start in range(0, len(wanted), chunk_size):
            with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
                curs.execute(query, [wanted[start : start + chunk_size]])
                found.update(((UUID(str(r[1])), int(r[2])), int(r[0])) for r in curs.fetchall())
        return found
    keys = {str(i) for i in wanted}  # the memory store: positions are list indexes
    for index, stored in enumerate(getattr(recorder, "_stored_events", ())):
        if str(stored.originator_id) in keys:
            found[(UUID(str(stored.originator_id)), stored.originator_version)] = index + 1
    return found
