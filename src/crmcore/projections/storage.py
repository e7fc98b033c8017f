"""Where views keep their rows and positions, in the same database as the events.

Each storage writes a page of row changes and the view's new position in **one transaction**, after
re-reading the position under a lock. If another process advanced it in the meantime,
:class:`PositionMoved` is raised and nothing is written: every event is applied exactly once.

A view whose rows are many and small may ask for them to be **packed** (:meth:`ViewStorage.pack_rows`):
the SQLite storage then keeps its rows in buckets - a row's bucket is the key's group (up to its last
``:``) and its last few characters - each stored as one compressed document, so a rebuild writes and
deletes hundreds of documents instead of one row per key. Every read gives the same rows, in the same
order, as unpacked storage would; only the stored form differs.
"""

from __future__ import annotations

import threading
import zlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import orjson

from crmcore.exceptions import CrmError
from crmcore.projections.base import Row, matches

__all__ = [
    "MemoryViewStorage",
    "PositionMoved",
    "PostgresViewStorage",
    "SQLiteViewStorage",
    "ViewStorage",
    "ViewVersionConflict",
]

ROWS_TABLE = "crmcore_view_rows"
POSITIONS_TABLE = "crmcore_view_positions"
_IN_CHUNK = 500


class ViewVersionConflict(CrmError, RuntimeError):
    """The store holds a newer version of a view than this code builds."""


class PositionMoved(Exception):
    """Another runner advanced the view first; re-read and try again."""


class ViewStorage(ABC):
    """Rows and positions of views, with an atomic 'apply a page' operation."""

    @abstractmethod
    def position(self, view: str, version: int) -> int:
        """The last notification id applied to ``view`` (0 if none). A different version resets it."""

    @abstractmethod
    def load(self, view: str, keys: Iterable[str]) -> dict[str, Row]:
        """The existing rows among ``keys``."""

    @abstractmethod
    def commit_page(
        self, view: str, expected: int, new_position: int, changes: Mapping[str, Row | None]
    ) -> None:
        """Write ``changes`` (None deletes) and move the position from ``expected`` to ``new_position``.

        Raises :class:`PositionMoved`, writing nothing, if the position is no longer ``expected``.
        """

    @abstractmethod
    def rows(self, view: str, where: Mapping[str, Any]) -> list[Row]:
        """The rows whose fields equal ``where``'s values."""

    @abstractmethod
    def with_prefix(self, view: str, prefix: str) -> dict[str, Row]:
        """The rows whose keys start with ``prefix`` (ASCII), by key, in key order."""

    @abstractmethod
    def count_by(self, view: str, field: str) -> dict[Any, int]:
        """How many rows hold each value of ``field``."""

    @abstractmethod
    def reset(self, view: str, version: int) -> None:
        """Forget every row and the position of ``view`` (it will be rebuilt from zero)."""

    def pack_rows(self, view: str, suffix: int) -> None:  # noqa: B027 - storing rows one by one is fine
        """Let the storage keep ``view``'s rows packed in buckets by the key's group (up to its last ``:``)
        and its last ``suffix`` characters. Reads are unchanged; a storage may ignore it (this one does).
        Changing how a view is packed changes its stored form: raise the view's version with it."""


class MemoryViewStorage(ViewStorage):
    """Views held in this process, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, Row]] = {}
        self._positions: dict[str, tuple[int, int]] = {}

    def position(self, view: str, version: int) -> int:
        with self._lock:
            stored = self._positions.get(view)
            if stored is not None and stored[0] == version:
                return stored[1]
            _refuse_downgrade(view, stored[0] if stored else None, version)
            self._positions[view] = (version, 0)
            self._rows[view] = {}
            return 0

    def load(self, view: str, keys: Iterable[str]) -> dict[str, Row]:
        with self._lock:
            table = self._rows.get(view, {})
            return {k: table[k] for k in keys if k in table}

    def commit_page(
        self, view: str, expected: int, new_position: int, changes: Mapping[str, Row | None]
    ) -> None:
        with self._lock:
            version, current = self._positions[view]
            if current != expected:
                raise PositionMoved(view)
            table = self._rows.setdefault(view, {})
            for key, row in changes.items():
                if row is None:
                    table.pop(key, None)
                else:
                    table[key] = orjson.loads(orjson.dumps(row))
            self._positions[view] = (version, new_position)

    def rows(self, view: str, where: Mapping[str, Any]) -> list[Row]:
        with self._lock:
            table = self._rows.get(view, {})
            return [dict(r) for r in table.values() if matches(r, where)]

    def with_prefix(self, view: str, prefix: str) -> dict[str, Row]:
        with self._lock:
            table = self._rows.get(view, {})
            return {k: dict(table[k]) for k in sorted(table) if k.startswith(prefix)}

    def count_by(self, view: str, field: str) -> dict[Any, int]:
        with self._lock:
            return dict(Counter(r.get(field) for r in self._rows.get(view, {}).values()))

    def reset(self, view: str, version: int) -> None:
        with self._lock:
            self._rows[view] = {}
            self._positions[view] = (version, 0)


def _refuse_downgrade(view: str, stored: int | None, version: int) -> None:
    """A process running older code must not wipe a view that newer code has rebuilt."""
    if stored is not None and stored > version:
        raise ViewVersionConflict(
            f"view {view!r} is at version {stored} in the store, newer than this code's {version}: "
            "upgrade crmcore in this process"
        )


def _first(item: tuple[str, Any]) -> str:
    return item[0]


def _chunks(keys: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(keys), _IN_CHUNK):
        yield keys[i : i + _IN_CHUNK]


class _Buckets:
    """How a packed view's keys map to buckets, and a bucket's stored form (compressed JSON of its rows by
    key)."""

    def __init__(self, suffix: int) -> None:
        self.suffix = suffix

    def of(self, key: str) -> str:
        """The bucket of ``key``: its group (up to the last ``:``, included) and last characters."""
        return key[: key.rfind(":") + 1] + key[-self.suffix :]

    def by_bucket(self, keys: Iterable[str]) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        cut = -self.suffix
        for key in keys:
            bucket = key[: key.rfind(":") + 1] + key[cut:]
            held = result.get(bucket)
            if held is None:
                result[bucket] = [key]
            else:
                held.append(key)
        return result

    @staticmethod
    def dumps(rows: Mapping[str, Row]) -> bytes:
        return zlib.compress(orjson.dumps(rows), 1)

    @staticmethod
    def loads(doc: bytes) -> dict[str, Row]:
        rows: dict[str, Row] = orjson.loads(zlib.decompress(doc))
        return rows


class SQLiteViewStorage(ViewStorage):
    """Views in the SQLite file that holds the events, written with ``BEGIN IMMEDIATE``."""

    def __init__(self, datastore: Any) -> None:
        self._datastore = datastore
        self._packed: dict[str, _Buckets] = {}
        with self._write() as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {ROWS_TABLE} (view TEXT NOT NULL, key TEXT NOT NULL, "
                "doc TEXT NOT NULL, PRIMARY KEY (view, key)) WITHOUT ROWID"
            )
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {POSITIONS_TABLE} (view TEXT PRIMARY KEY, "
                "version INTEGER NOT NULL, position INTEGER NOT NULL)"
            )

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with self._datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self._datastore.transaction(commit=False) as cursor:
            yield cursor

    def position(self, view: str, version: int) -> int:
        with self._read() as c:
            c.execute(f"SELECT version, position FROM {POSITIONS_TABLE} WHERE view = ?", (view,))
            found = c.fetchone()
        if found is not None and found[0] == version:
            return int(found[1])
        with self._write() as c:  # re-check under the write lock: another process may have done it
            c.execute(f"SELECT version, position FROM {POSITIONS_TABLE} WHERE view = ?", (view,))
            found = c.fetchone()
            if found is not None and found[0] == version:
                return int(found[1])
            _refuse_downgrade(view, found[0] if found else None, version)
            self._reset(c, view, version)
        return 0

    def pack_rows(self, view: str, suffix: int) -> None:
        if suffix > 0:
            self._packed[view] = _Buckets(suffix)
        else:
            self._packed.pop(view, None)

    def _load_buckets(self, c: Any, view: str, buckets: Iterable[str]) -> dict[str, dict[str, Row]]:
        packing, result = self._packed[view], {}
        for chunk in _chunks(sorted(buckets)):
            marks = ",".join("?" * len(chunk))
            c.execute(f"SELECT key, doc FROM {ROWS_TABLE} WHERE view = ? AND key IN ({marks})",
                      (view, *chunk))
            for bucket, doc in c.fetchall():
                result[bucket] = packing.loads(doc)
        return result

    def _packed_rows(self, view: str, prefix: str = "") -> Iterator[tuple[str, Row]]:
        """Every row of the packed ``view`` whose key starts with ``prefix``, in key order."""
        group = prefix[: prefix.rfind(":") + 1]  # every key with the prefix is in a bucket with this one
        with self._read() as c:
            c.execute(f"SELECT doc FROM {ROWS_TABLE} WHERE view = ? AND key >= ? AND key < ?",
                      (view, group, group + "\x7f"))
            docs = [doc for (doc,) in c.fetchall()]
        loads = self._packed[view].loads
        found = [item for doc in docs for item in loads(doc).items() if item[0].startswith(prefix)]
        found.sort(key=_first)
        return iter(found)

    def load(self, view: str, keys: Iterable[str]) -> dict[str, Row]:
        result: dict[str, Row] = {}
        if view in self._packed:
            wanted = self._packed[view].by_bucket(keys)
            with self._read() as c:
                for bucket, rows in self._load_buckets(c, view, wanted).items():
                    result.update((k, rows[k]) for k in wanted[bucket] if k in rows)
            return result
        with self._read() as c:
            for chunk in _chunks(list(keys)):
                marks = ",".join("?" * len(chunk))
                c.execute(
                    f"SELECT key, doc FROM {ROWS_TABLE} WHERE view = ? AND key IN ({marks})",
                    (view, *chunk),
                )
                for key, doc in c.fetchall():
                    result[key] = orjson.loads(doc)
        return result

    def commit_page(
        self, view: str, expected: int, new_position: int, changes: Mapping[str, Row | None]
    ) -> None:
        with self._write() as c:
            c.execute(f"SELECT position FROM {POSITIONS_TABLE} WHERE view = ?", (view,))
            found = c.fetchone()
            if found is None or found[0] != expected:
                raise PositionMoved(view)
            upserts: list[tuple[str, str, str | bytes]]
            if view in self._packed:
                upserts, deletes = self._packed_changes(c, view, changes)
            else:  # in key order: neighbouring keys share index pages, each written once per commit
                upserts = [(view, k, orjson.dumps(r).decode()) for k, r in sorted(changes.items(), key=_first)
                           if r is not None]
                deletes = [(view, k) for k, r in changes.items() if r is None]
            if upserts:
                c.executemany(
                    f"INSERT INTO {ROWS_TABLE} (view, key, doc) VALUES (?, ?, ?) "
                    "ON CONFLICT (view, key) DO UPDATE SET doc = excluded.doc",
                    upserts,
                )
            if deletes:
                c.executemany(f"DELETE FROM {ROWS_TABLE} WHERE view = ? AND key = ?", deletes)
            c.execute(
                f"UPDATE {POSITIONS_TABLE} SET position = ? WHERE view = ?", (new_position, view)
            )

    def _packed_changes(
        self, c: Any, view: str, changes: Mapping[str, Row | None],
    ) -> tuple[list[tuple[str, str, str | bytes]], list[tuple[str, str]]]:
        """The buckets ``changes`` rewrite (each read, changed and packed again) and those they empty."""
        packing = self._packed[view]
        by_bucket = packing.by_bucket(changes)
        held = self._load_buckets(c, view, by_bucket)
        upserts: list[tuple[str, str, str | bytes]] = []
        deletes: list[tuple[str, str]] = []
        for bucket in sorted(by_bucket):
            rows = held.get(bucket)
            if rows is None:
                rows = {}
            for key in by_bucket[bucket]:
                row = changes[key]
                if row is None:
                    rows.pop(key, None)
                else:
                    rows[key] = row
            if rows:
                upserts.append((view, bucket, packing.dumps(rows)))
            elif bucket in held:
                deletes.append((view, bucket))
        return upserts, deletes

    def rows(self, view: str, where: Mapping[str, Any]) -> list[Row]:
        if view in self._packed:
            return [row for _, row in self._packed_rows(view) if matches(row, where)]
        sql = f"SELECT doc FROM {ROWS_TABLE} WHERE view = ?"
        params: list[Any] = [view]
        for field, value in where.items():
            path = f"$.{field}"
            if value is None:
                sql += " AND json_extract(doc, ?) IS NULL"
                params.append(path)
            else:
                sql += " AND json_extract(doc, ?) = ?"
                params += [path, value]
        with self._read() as c:
            c.execute(sql + " ORDER BY key", params)
            return [orjson.loads(doc) for (doc,) in c.fetchall()]

    def with_prefix(self, view: str, prefix: str) -> dict[str, Row]:
        if view in self._packed:
            return dict(self._packed_rows(view, prefix))
        with self._read() as c:  # keys are ASCII: every key with the prefix sorts below prefix + DEL
            c.execute(
                f"SELECT key, doc FROM {ROWS_TABLE} WHERE view = ? AND key >= ? AND key < ? ORDER BY key",
                (view, prefix, prefix + "\x7f"),
            )
            return {key: orjson.loads(doc) for key, doc in c.fetchall()}

    def count_by(self, view: str, field: str) -> dict[Any, int]:
        if view in self._packed:
            return dict(Counter(row.get(field) for _, row in self._packed_rows(view)))
        with self._read() as c:
            c.execute(
                f"SELECT json_extract(doc, ?), COUNT(*) FROM {ROWS_TABLE} WHERE view = ? GROUP BY 1",
                (f"$.{field}", view),
            )
            return {value: int(n) for value, n in c.fetchall()}

    def reset(self, view: str, version: int) -> None:
        with self._write() as c:
            self._reset(c, view, version)

    @staticmethod
    def _reset(c: Any, view: str, version: int) -> None:
        c.execute(f"DELETE FROM {ROWS_TABLE} WHERE view = ?", (view,))
        c.execute(
            f"INSERT INTO {POSITIONS_TABLE} (view, version, position) VALUES (?, ?, 0) "
            "ON CONFLICT (view) DO UPDATE SET version = excluded.version, position = 0",
            (view, version),
        )


class PostgresViewStorage(ViewStorage):
    """Views in the PostgreSQL schema that holds the events; pages lock their position row."""

    def __init__(self, datastore: Any) -> None:
        from psycopg.sql import SQL, Identifier

        self._datastore = datastore
        schema = Identifier(datastore.schema)
        self._rows_table = SQL("{}.{}").format(schema, Identifier(ROWS_TABLE))
        self._positions_table = SQL("{}.{}").format(schema, Identifier(POSITIONS_TABLE))
        self._sql = SQL
        with datastore.transaction(commit=True) as c:
            c.execute(SQL("SELECT pg_advisory_xact_lock(hashtext('crmcore_view_tables'))"))
            c.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} (view TEXT NOT NULL, key TEXT NOT NULL, "
                    "doc JSONB NOT NULL, PRIMARY KEY (view, key))"
                ).format(self._rows_table)
            )
            c.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} (view TEXT PRIMARY KEY, version INTEGER NOT NULL, "
                    "position BIGINT NOT NULL)"
                ).format(self._positions_table)
            )

    def position(self, view: str, version: int) -> int:
        with self._datastore.transaction(commit=False) as c:
            found = self._stored_position(c, view)
        if found is not None and found["version"] == version:
            return int(found["position"])
        with self._datastore.transaction(commit=True) as c:
            # Re-check under a lock: another process may have initialised the view meanwhile.
            c.execute(self._sql("SELECT pg_advisory_xact_lock(hashtext(%s))"), (f"crmcore_view:{view}",))
            found = self._stored_position(c, view)
            if found is not None and found["version"] == version:
                return int(found["position"])
            _refuse_downgrade(view, found["version"] if found else None, version)
            self._reset(c, view, version)
        return 0

    def _stored_position(self, c: Any, view: str) -> Any:
        c.execute(
            self._sql("SELECT version, position FROM {} WHERE view = %s").format(self._positions_table),
            (view,),
        )
        return c.fetchone()

    def load(self, view: str, keys: Iterable[str]) -> dict[str, Row]:
        with self._datastore.transaction(commit=False) as c:
            c.execute(
                self._sql("SELECT key, doc FROM {} WHERE view = %s AND key = ANY(%s)").format(
                    self._rows_table
                ),
                (view, list(keys)),
            )
            return {r["key"]: r["doc"] for r in c.fetchall()}

    def commit_page(
        self, view: str, expected: int, new_position: int, changes: Mapping[str, Row | None]
    ) -> None:
        from psycopg.types.json import Jsonb

        sql = self._sql
        with self._datastore.transaction(commit=True) as c:
            c.execute(
                sql("SELECT position FROM {} WHERE view = %s FOR UPDATE").format(
                    self._positions_table
                ),
                (view,),
            )
            found = c.fetchone()
            if found is None or found["position"] != expected:
                raise PositionMoved(view)
            upserts = [(view, k, Jsonb(r)) for k, r in sorted(changes.items(), key=_first) if r is not None]
            deletes = [k for k, r in changes.items() if r is None]
            if upserts:
                c.executemany(
                    sql(
                        "INSERT INTO {} (view, key, doc) VALUES (%s, %s, %s) "
                        "ON CONFLICT (view, key) DO UPDATE SET doc = excluded.doc"
                    ).format(self._rows_table),
                    upserts,
                )
            if deletes:
                c.execute(
                    sql("DELETE FROM {} WHERE view = %s AND key = ANY(%s)").format(self._rows_table),
                    (view, deletes),
                )
            c.execute(
                sql("UPDATE {} SET position = %s WHERE view = %s").format(self._positions_table),
                (new_position, view),
            )

    def rows(self, view: str, where: Mapping[str, Any]) -> list[Row]:
        from psycopg.types.json import Jsonb

        sql = self._sql("SELECT doc FROM {} WHERE view = %s").format(self._rows_table)
        params: list[Any] = [view]
        for field, value in where.items():
            if value is None:
                sql += self._sql(" AND (doc -> %s IS NULL OR doc -> %s = 'null'::jsonb)")
                params += [field, field]
            else:
                sql += self._sql(" AND doc -> %s = %s")
                params += [field, Jsonb(value)]
        with self._datastore.transaction(commit=False) as c:
            c.execute(sql + self._sql(" ORDER BY key"), params)
            return [r["doc"] for r in c.fetchall()]

    def with_prefix(self, view: str, prefix: str) -> dict[str, Row]:
        with self._datastore.transaction(commit=False) as c:  # byte order, whatever the collation
            c.execute(
                self._sql("SELECT key, doc FROM {} WHERE view = %s AND starts_with(key, %s) "
                          "ORDER BY key COLLATE \"C\"").format(self._rows_table),
                (view, prefix),
            )
            return {r["key"]: r["doc"] for r in c.fetchall()}

    def count_by(self, view: str, field: str) -> dict[Any, int]:
        with self._datastore.transaction(commit=False) as c:
            c.execute(
                self._sql(
                    "SELECT doc -> %s AS value, COUNT(*) AS n FROM {} WHERE view = %s GROUP BY 1"
                ).format(self._rows_table),
                (field, view),
            )
            return {r["value"]: int(r["n"]) for r in c.fetchall()}

    def reset(self, view: str, version: int) -> None:
        with self._datastore.transaction(commit=True) as c:
            c.execute(self._sql("SELECT pg_advisory_xact_lock(hashtext(%s))"), (f"crmcore_view:{view}",))
            self._reset(c, view, version)

    def _reset(self, c: Any, view: str, version: int) -> None:
        sql = self._sql
        # Take the position row's lock first, so that a page being committed finishes before the wipe.
        c.execute(sql("SELECT 1 FROM {} WHERE view = %s FOR UPDATE").format(self._positions_table), (view,))
        c.execute(sql("DELETE FROM {} WHERE view = %s").format(self._rows_table), (view,))
        c.execute(
            sql(
                "INSERT INTO {} (view, version, position) VALUES (%s, %s, 0) "
                "ON CONFLICT (view) DO UPDATE SET version = excluded.version, position = 0"
            ).format(self._positions_table),
            (view, version),
        )
