"""Reading the log fast: stored events as plain records, in large pages, without building event objects.

Replay is bounded by decoding, not reading (the stored log reads several times faster than events can be
rebuilt from it). A :class:`StoredRecord` is what a view needs from one stored event: its position, the
originator id as text, its version, its topic and its data in JSON-native form (text for times, ids and
decimals, exactly as ``datetime.isoformat()``, ``str(UUID)`` and ``str(Decimal)`` write them).

:class:`RecordReader` selects pages of raw rows straight from the SQLite or PostgreSQL events table (the
topic filter runs in SQL), decrypts and decompresses them with the application's cipher and compressor,
and decodes the JSON with ``orjson``. Anything the fast decoder does not know - a value type other than the
library's standard ones, an event written by an older class version that needs upcasting, another
transcoder - goes through the application's own mapper and comes out in exactly the same form, so both
paths always agree (:func:`record_of` is that conversion, and the tests hold the two paths to it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, NamedTuple
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    ApplicationRecorder,
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic, resolve_topic

__all__ = ["RecordReader", "StoredRecord", "native", "record_of"]

#: Records read per page: big enough to amortise each round trip, small enough to bound memory.
RECORD_PAGE_SIZE = 10_000

#: An id in the form ``str(UUID)`` writes: lower-case hex digits, hyphenated 8-4-4-4-12.
_CANONICAL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: An id as 32 lower-case hex digits (as ``UUID.hex`` writes it).
_HEX_ID = re.compile(r"[0-9a-f]{32}")

#: The standard transcodings whose stored text already is the JSON-native form (UUIDs are re-hyphenated).
_STANDARD = {"datetime_iso": DatetimeAsISO, "decimal_str": DecimalAsStr, "uuid_hex": UUIDAsHex}


class StoredRecord(NamedTuple):
    """One stored event as plain data: ``data`` holds the event's attributes in JSON-native form."""

    position: int
    originator_id: str
    version: int
    topic: str
    data: dict[str, Any]


def native(value: Any) -> Any:
    """``value`` in JSON-native form: times and dates as ISO text, UUIDs and decimals as text, recursively."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, Enum):
        return native(value.value)
    if isinstance(value, dict):
        return {str(k): native(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [native(v) for v in value]
    raise TypeError(f"no JSON-native form for {type(value).__name__}")


def record_of(event: DomainEventProtocol[Any], position: int = 0) -> StoredRecord:
    """The record of a domain event, as the fast reader would give it for the stored event."""
    data = {k: native(v) for k, v in vars(event).items() if k not in ("originator_id", "originator_version")}
    return StoredRecord(position, str(event.originator_id), event.originator_version, get_topic(type(event)),
                        data)


class RecordReader:
    """Pages of :class:`StoredRecord` from an application's recorder, decoded with its mapper's settings."""

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[Any]) -> None:
        self.recorder = recorder
        self.mapper = mapper
        transcoder = mapper.transcoder
        self._fast_json = type(transcoder) is JSONTranscoder and all(
            type(t) is _STANDARD.get(name) for name, t in transcoder.names.items())
        self._select, self.can_share, self._read_ahead = _raw_selector(recorder)
        self._ids: dict[Any, str] = {}
        self._plans: dict[str, tuple[int, tuple[str, ...]]] = {}

    def pages(
        self,
        topics: Sequence[str],
        *,
        after: int = 0,
        stop: int | None = None,
        page_size: int = RECORD_PAGE_SIZE,
        share: tuple[int, int] | None = None,
        sliced: bool = False,
    ) -> Iterator[list[StoredRecord]]:
        """The stored events with one of ``topics`` after position ``after`` (up to ``stop``), by pages.

        ``share=(i, n)`` keeps only the events of the aggregates in share ``i`` of ``n`` (by the last
        character of their id), for folding a view on several processes; SQLite and PostgreSQL only.
        ``sliced``: each page read is decoded and handed over in slices of :data:`DECODED_SLICE` records
        (a page's length then says nothing about whether more follow).
        """
        if share is not None and not self.can_share:
            raise ValueError("reading a share of the log needs a SQLite or PostgreSQL store")
        raw = self._raw_pages(list(topics), after, stop, page_size, share)
        for rows in _slices(raw) if sliced else raw:
            yield self._decode(rows)

    def _raw_pages(
        self, topics: list[str], after: int, stop: int | None, page_size: int, share: tuple[int, int] | None,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Raw rows by pages. From a server (PostgreSQL), after a full first page, each next page is selected
        on a second thread while the caller decodes and folds the one it has: the wait for the server does
        not hold the GIL. From a file (SQLite) reading is work of this process, which a second thread would
        only contend for: pages are read in turn."""
        rows = self._select(after, page_size, stop, topics, share)
        if not rows:
            return
        if len(rows) < page_size or not self._read_ahead:
            while True:
                yield rows
                if len(rows) < page_size:
                    return
                rows = self._select(rows[-1][0], page_size, stop, topics, share)
                if not rows:
                    return
        with ThreadPoolExecutor(1, thread_name_prefix="crmcore-read") as pool:
            while True:
                ahead = None
                if len(rows) == page_size:
                    ahead = pool.submit(self._select, rows[-1][0], page_size, stop, topics, share)
                yield rows
                if ahead is None:
                    return
                rows = ahead.result()
                if not rows:
                    return

    def skimmed_pages(
        self, topics: Sequence[str], skim: frozenset[str], *, after: int = 0,
        page_size: int = RECORD_PAGE_SIZE, sliced: bool = False,
    ) -> Iterator[list[StoredRecord]]:
        """Like :meth:`pages`, but the records of the ``skim`` topics are only parsed: their values the
        transcoder wraps (times, ids) stay as stored (``{"_type_": ..., "_data_": ...}``) and their
        originator id as the store gives it - for a reader that needs only their plain fields, at a
        fraction of the cost. Without the standard JSON transcoder, every record is decoded in full."""
        if not self._fast_json:
            yield from self.pages(topics, after=after, page_size=page_size, sliced=sliced)
            return
        cipher, compressor, loads = self.mapper.cipher, self.mapper.compressor, orjson.loads
        make, cls, plain = tuple.__new__, StoredRecord, cipher is None and compressor is None
        raw_pages = self._raw_pages(list(topics), after, None, page_size, None)
        for rows in _slices(raw_pages) if sliced else raw_pages:
            records: list[StoredRecord] = []
            append = records.append
            for row in rows:
                if row[3] not in skim:
                    records += self._decode([row])
                    continue
                raw = row[4]
                if not plain:
                    if cipher is not None:
                        raw = cipher.decrypt(raw)
                    if compressor is not None:
                        raw = compressor.decompress(raw)
                originator_id = row[1]
                if type(originator_id) is not str:
                    originator_id = str(originator_id)
                append(make(cls, (row[0], originator_id, row[2], row[3], loads(raw))))  # StoredRecord(...)
            yield records

    def _decode(self, rows: Sequence[tuple[Any, ...]]) -> list[StoredRecord]:
        """Records from raw rows: the hot loop of every replay, so names are bound once per page.

        Per topic, the class version records must have been written with and the top-level keys that held
        transcoded values so far are kept; a record whose transcoded values those keys do not all account
        for (counted in the raw JSON) is walked whole, and its keys learnt.
        """
        mapper, ids, plans = self.mapper, self._ids, self._plans
        cipher, compressor = mapper.cipher, mapper.compressor
        fast, loads, make, cls = self._fast_json, orjson.loads, tuple.__new__, StoredRecord
        records: list[StoredRecord] = []
        append = records.append
        for position, originator_id, version, topic, state in rows:
            text = ids.get(originator_id)
            if text is None:
                text = self._id_text(originator_id)
            raw = state
            if cipher is not None:
                raw = cipher.decrypt(raw)
            if compressor is not None:
                raw = compressor.decompress(raw)
            if fast:
                data = loads(raw)
                plan = plans.get(topic)
                if plan is None:
                    plan = self._plan(topic)
                if (data.pop("class_version") if "class_version" in data else 1) == plan[0]:
                    wrapped = raw.count(b'"_type_"')
                    for key in plan[1]:
                        try:
                            value = data[key]
                            kind = value["_type_"]
                        except (KeyError, TypeError):
                            continue
                        if kind == "datetime_iso" or kind == "decimal_str":
                            data[key] = value["_data_"]
                            wrapped -= 1
                        elif kind == "uuid_hex":
                            data[key] = _hyphenated(value["_data_"])
                            wrapped -= 1
                    if not wrapped or self._unwrap_all(topic, data):
                        append(make(cls, (position, text, version, topic, data)))  # as StoredRecord(...)
                        continue
            event = mapper.to_domain_event(StoredEvent(originator_id=UUID(text), originator_version=version,
                                                       topic=topic, state=state))
            append(record_of(event, position))
        return records

    def _id_text(self, originator_id: Any) -> str:
        if type(originator_id) is str:  # SQLite stores 32 hex digits; PostgreSQL's text is str(UUID)'s form
            if _HEX_ID.fullmatch(originator_id):
                return _hyphenated(originator_id)
            if _CANONICAL_ID.fullmatch(originator_id):
                return originator_id
        if len(self._ids) >= 1_000_000:
            self._ids.clear()
        if type(originator_id) is str and len(originator_id) == 32:  # SQLite: the 32 hex digits
            text = _hyphenated(originator_id.lower())
        else:
            text = str(UUID(str(originator_id)))
        self._ids[originator_id] = text
        return text

    def _plan(self, topic: str) -> tuple[int, tuple[str, ...]]:
        plan = self._plans[topic] = (int(getattr(resolve_topic(topic), "class_version", 1)), ())
        return plan

    def _unwrap_all(self, topic: str, data: dict[str, Any]) -> bool:
        """Walk the whole record (False: a type the fast decoder does not know), learning its keys."""
        keys = [k for k, v in data.items() if type(v) is dict and "_type_" in v]
        if not _unwrap(data):
            return False
        version, known = self._plans[topic]
        self._plans[topic] = (version, (*known, *(k for k in keys if k not in known)))
        return True


def _unwrap(data: dict[str, Any] | list[Any]) -> bool:
    """Replace standard transcoded values by their text in place; False when an unknown type is met."""
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        if type(value) is dict:
            kind = value.get("_type_")
            if kind is None:
                if not _unwrap(value):
                    return False
            elif kind == "datetime_iso" or kind == "decimal_str":
                data[key] = value["_data_"]  # type: ignore[index]
            elif kind == "uuid_hex":
                data[key] = _hyphenated(value["_data_"])  # type: ignore[index]
            else:
                return False
        elif type(value) is list and value and not _unwrap(value):
            return False
    return True


def _hyphenated(hex_: str) -> str:
    """A UUID's 32 hex digits in the standard hyphenated form (as ``str(UUID)``)."""
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"


#: Records decoded at a time: a page is read in one round trip, but decoded and handed over in slices this
#: long, so a fold reads each record while it is still in the processor's cache, and frees it soon after.
DECODED_SLICE = 500


def _slices(pages: Iterator[list[tuple[Any, ...]]]) -> Iterator[list[tuple[Any, ...]]]:
    """Each raw page in slices of :data:`DECODED_SLICE` rows."""
    for rows in pages:
        if len(rows) <= DECODED_SLICE:
            yield rows
            continue
        for start in range(0, len(rows), DECODED_SLICE):
            yield rows[start : start + DECODED_SLICE]


def _raw_selector(recorder: ApplicationRecorder) -> tuple[Any, bool, bool]:
    """A function selecting raw ``(position, originator id, version, topic, state)`` rows for ``recorder``,
    whether it can select one share of the aggregates, and whether to read the next page ahead."""
    from eventsourcing.sqlite import SQLiteApplicationRecorder

    if isinstance(recorder, SQLiteApplicationRecorder):
        return _sqlite_selector(recorder), True, False
    try:
        from eventsourcing.postgres import PostgresApplicationRecorder
    except ImportError:  # pragma: no cover - psycopg not installed
        PostgresApplicationRecorder = None  # type: ignore[assignment,misc]  # noqa: N806
    if PostgresApplicationRecorder is not None and isinstance(recorder, PostgresApplicationRecorder):
        return _postgres_selector(recorder), True, True

    def select(
        after: int, limit: int, stop: int | None, topics: list[str], _: tuple[int, int] | None,
    ) -> list[tuple[Any, ...]]:
        page = recorder.select_notifications(start=after, limit=limit, stop=stop, topics=topics,
                                             inclusive_of_start=False)
        return [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in page]

    return select, False, False


def _sqlite_selector(recorder: Any) -> Any:
    table = recorder.events_table_name

    def select(
        after: int, limit: int, stop: int | None, topics: list[str], share: tuple[int, int] | None,
    ) -> list[tuple[Any, ...]]:
        sql = f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} WHERE rowid > ?"
        params: list[Any] = [after]
        if stop is not None:
            sql += " AND rowid <= ?"
            params.append(stop)
        if topics:
            sql += f" AND topic IN ({','.join('?' * len(topics))})"
            params += topics
        if share is not None:
            sql += " AND unicode(substr(originator_id, -1)) % ? = ?"
            params += [share[1], share[0]]
        sql += " ORDER BY rowid LIMIT ?"
        params.append(limit)
        with recorder.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor
            cursor.row_factory = None
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    return select


def _postgres_selector(recorder: Any) -> Any:
    from psycopg.rows import tuple_row
    from psycopg.sql import SQL, Identifier

    datastore = recorder.datastore
    table = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(recorder.events_table_name))

    def select(
        after: int, limit: int, stop: int | None, topics: list[str], share: tuple[int, int] | None,
    ) -> list[tuple[Any, ...]]:
        sql = SQL("SELECT notification_id, originator_id::text, originator_version, topic, state FROM {} "
                  "WHERE notification_id > %s").format(table)
        params: list[Any] = [after]
        if stop is not None:
            sql += SQL(" AND notification_id <= %s")
            params.append(stop)
        if topics:
            sql += SQL(" AND topic = ANY(%s)")
            params.append(topics)
        if share is not None:
            sql += SQL(" AND get_byte(uuid_send(originator_id), 15) %% %s = %s")
            params += [share[1], share[0]]
        sql += SQL(" ORDER BY notification_id LIMIT %s")
        params.append(limit)
        with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(sql, params, prepare=True)
            return [(r[0], r[1], r[2], r[3], bytes(r[4])) for r in cursor.fetchall()]

    return select
