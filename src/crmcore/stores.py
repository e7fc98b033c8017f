"""Choosing and configuring a store: memory, SQLite (the embedded default) or PostgreSQL, by one URL.

``memory:``
    Everything in this process; gone when it ends. For tests.
``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``
    One file, zero set-up, one machine (several processes may share the file).
``postgresql://user:password@host:port/dbname?schema=name``
    Many processes on many machines. Needs ``pip install 'crmcore[postgres]'``.

The URL may also come from the ``CRMCORE_STORE`` environment variable. crmcore never lets the process
environment configure the underlying ``eventsourcing`` package behind its back: every setting it passes is
derived from the URL and :class:`StoreSettings`.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from crmcore._chain import GENESIS, Chainer, ChainRow, chain_table_name, paired
from crmcore.exceptions import StoreConfigurationError

__all__ = [
    "AUDIT_KEY_ENV_VAR",
    "DEFAULT_STORE",
    "STORE_ENV_VAR",
    "BatchedSQLiteApplicationRecorder",
    "ChainedPOPOApplicationRecorder",
    "StoreKind",
    "StoreSettings",
    "create_audit_key",
    "create_cipher_key",
    "parse_store_url",
]

#: The environment variable read when no store is given.
STORE_ENV_VAR = "CRMCORE_STORE"
#: The environment variable holding a cipher key, read only when no settings are given.
CIPHER_KEY_ENV_VAR = "CRMCORE_CIPHER_KEY"
#: The environment variable holding an audit key, read only when no settings are given.
AUDIT_KEY_ENV_VAR = "CRMCORE_AUDIT_KEY"
#: The store used when neither an argument nor the environment names one.
DEFAULT_STORE = "sqlite:///crmcore.db"


class StoreKind(StrEnum):
    """The three kinds of store."""

    MEMORY = "memory"
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class StoreSettings(BaseModel):
    """Where events live and how they are kept.

    Build it with :func:`parse_store_url` or directly. ``cipher_key`` (a base64 AES key from
    :func:`create_cipher_key`; needs ``crmcore[encryption]``) encrypts every stored payload with AES-GCM;
    ``compress`` zlib-compresses payloads before encryption. ``audit_key`` (base64, from
    :func:`create_audit_key`) keys the chain that makes the stored log tamper-evident (design 07 § 2):
    keep it outside the database; without one the chain is keyed with nothing and only a head kept
    elsewhere (``crm.log_head()``) proves it was not recomputed.
    """

    model_config = ConfigDict(frozen=True)

    kind: StoreKind
    sqlite_path: str | None = None
    pg_dbname: str | None = None
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str | None = None
    pg_password: SecretStr | None = None
    pg_schema: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    pg_pool_size: int = Field(default=5, ge=1, le=100)
    sqlite_lock_timeout: int = Field(default=30, ge=1, le=3600)
    cipher_key: SecretStr | None = None
    compress: bool = False
    audit_key: SecretStr | None = None

    def audit_key_bytes(self) -> bytes:
        """The audit key's bytes (empty without one)."""
        if self.audit_key is None:
            return b""
        try:
            return base64.b64decode(self.audit_key.get_secret_value(), validate=True)
        except ValueError:
            raise StoreConfigurationError(
                "audit_key: give the base64 text create_audit_key() makes") from None

    def eventsourcing_env(self) -> dict[str, str]:
        """The complete environment handed to the ``eventsourcing`` application."""
        env: dict[str, str] = {}
        if self.kind is StoreKind.MEMORY:
            env["PERSISTENCE_MODULE"] = "eventsourcing.popo"  # the CRM builds the chained recorder itself
        elif self.kind is StoreKind.SQLITE:
            assert self.sqlite_path is not None
            env["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
            env["SQLITE_DBNAME"] = self.sqlite_path
            env["SQLITE_LOCK_TIMEOUT"] = str(self.sqlite_lock_timeout)
            env["APPLICATION_RECORDER_TOPIC"] = (
                "crmcore.stores:BatchedSQLiteApplicationRecorder"
            )
        else:
            env["PERSISTENCE_MODULE"] = "eventsourcing.postgres"
            env["POSTGRES_DBNAME"] = self.pg_dbname or ""
            env["POSTGRES_HOST"] = self.pg_host
            env["POSTGRES_PORT"] = str(self.pg_port)
            env["POSTGRES_USER"] = self.pg_user or ""
            env["POSTGRES_PASSWORD"] = self.pg_password.get_secret_value() if self.pg_password else ""
            env["POSTGRES_POOL_SIZE"] = str(self.pg_pool_size)
            env["POSTGRES_LOCK_TIMEOUT"] = "30"
            env["POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT"] = "60"
            env["APPLICATION_RECORDER_TOPIC"] = (
                "crmcore._postgres:UnpipelinedPostgresApplicationRecorder"
            )
            if self.pg_schema:
                env["POSTGRES_SCHEMA"] = self.pg_schema
        if self.cipher_key is not None:
            env["CIPHER_TOPIC"] = "eventsourcing.cryptography:AESCipher"
            env["CIPHER_KEY"] = self.cipher_key.get_secret_value()
        if self.compress:
            env["COMPRESSOR_TOPIC"] = "eventsourcing.compressor:ZlibCompressor"
        return env


def create_audit_key(num_bytes: int = 32) -> str:
    """A new random audit key (16 to 64 bytes), base64-encoded, for ``StoreSettings.audit_key``."""
    if not 16 <= num_bytes <= 64:
        raise ValueError("num_bytes: 16 to 64")
    return base64.b64encode(secrets.token_bytes(num_bytes)).decode()


def create_cipher_key(num_bytes: int = 32) -> str:
    """A new random AES key (16, 24 or 32 bytes), base64-encoded, for ``StoreSettings.cipher_key``."""
    from eventsourcing.cryptography import AESCipher

    return AESCipher.create_key(num_bytes)


def parse_store_url(url: str | None = None, **overrides: Any) -> StoreSettings:
    """Turn a store URL (or ``$CRMCORE_STORE``, or the default) into :class:`StoreSettings`.

    Keyword arguments override what the URL says (``cipher_key=...``, ``compress=True``, …).
    """
    if url is None:
        url = os.environ.get(STORE_ENV_VAR) or DEFAULT_STORE
        if CIPHER_KEY_ENV_VAR in os.environ and "cipher_key" not in overrides:
            overrides["cipher_key"] = os.environ[CIPHER_KEY_ENV_VAR]
        if AUDIT_KEY_ENV_VAR in os.environ and "audit_key" not in overrides:
            overrides["audit_key"] = os.environ[AUDIT_KEY_ENV_VAR]
    url = url.strip()
    if url in ("memory:", "memory://"):
        fields: dict[str, Any] = {"kind": StoreKind.MEMORY}
    elif url.startswith("sqlite:///"):
        path = unquote(url[len("sqlite:///"):])
        if not path or path.startswith(":memory:"):
            raise StoreConfigurationError(f"SQLite store needs a file path: {url!r} (use 'memory:')")
        fields = {"kind": StoreKind.SQLITE, "sqlite_path": path}
    elif url.startswith(("postgresql://", "postgres://")):
        fields = _postgres_fields(url)
    else:
        raise StoreConfigurationError(
            f"unknown store URL {url!r}: expected 'memory:', 'sqlite:///path.db' or "
            "'postgresql://user:password@host:port/dbname'"
        )
    fields.update(overrides)
    try:
        return StoreSettings(**fields)
    except ValueError as error:
        raise StoreConfigurationError(f"invalid store settings for {url!r}: {error}") from None


def _postgres_fields(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise StoreConfigurationError(f"PostgreSQL URL needs a database name: {url!r}")
    try:
        port = parts.port or 5432
    except ValueError:
        raise StoreConfigurationError(f"invalid port in {url!r}") from None
    fields: dict[str, Any] = {
        "kind": StoreKind.POSTGRESQL,
        "pg_dbname": dbname,
        "pg_host": parts.hostname or "127.0.0.1",
        "pg_port": port,
        "pg_user": unquote(parts.username) if parts.username else os.environ.get("USER", "postgres"),
        "pg_password": unquote(parts.password) if parts.password else None,
    }
    query = parse_qs(parts.query)
    known = {"schema": "pg_schema", "pool_size": "pg_pool_size"}
    for key, values in query.items():
        if key not in known:
            raise StoreConfigurationError(f"unknown PostgreSQL URL option {key!r} in {url!r}")
        fields[known[key]] = values[-1]
    return fields


class ChainedPOPOApplicationRecorder(POPOApplicationRecorder):
    """The memory recorder, keeping the tamper-evident chain of its events (design 07 § 2) in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.chainer = Chainer()
        self.chain: dict[int, ChainRow] = {}
        self._head: tuple[int, bytes] = (0, GENESIS)

    def start_chain(self, key: bytes) -> None:
        """Key the chain (a fresh memory store has no event to adopt)."""
        self.chainer = Chainer(key)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with self._database_lock:  # reentrant: the insert takes it again
            positions = super().insert_events(stored_events, **kwargs)
            if positions and stored_events:
                rows = self.chainer.rows(self._head, paired(positions, stored_events))
                self.chain.update((row[0], row) for row in rows)
                self._head = (rows[-1][0], rows[-1][2])
            return positions

    def chain_head(self) -> tuple[int, bytes]:
        """The last chained ``(position, link)``."""
        with self._database_lock:
            return self._head

    def select_chain(self, after: int, limit: int) -> list[ChainRow]:
        """Chain rows after position ``after``, in position order, at most ``limit``."""
        with self._database_lock:
            return [self.chain[p] for p in sorted(p for p in self.chain if p > after)[:limit]]


class BatchedSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """The SQLite recorder, inserting a save's events with one ``executemany``, and chaining them.

    The stock recorder runs one ``execute`` per event to learn each row id. Inside one write transaction
    SQLite hands out consecutive rowids, so the ids are known from the table's maximum after the insert.
    Every insert also writes the events' rows of the tamper-evident chain (design 07 § 2) in the same
    transaction: SQLite has one writer at a time, so the head read there is the last.
    """

    def __init__(self, datastore: Any, events_table_name: str = "stored_events") -> None:
        self.chain_table_name = chain_table_name(events_table_name)  # the create statements read it
        self.chainer = Chainer()
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.chain_table_name} "
            "(position INTEGER PRIMARY KEY, prev INTEGER NOT NULL, link BLOB NOT NULL)",
        ]

    def start_chain(self, key: bytes) -> None:
        """Key the chain; a log with events and no chain yet (written before it existed) is chained now."""
        self.chainer = Chainer(key)
        try:
            with self.datastore.transaction(commit=True) as c:
                c.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {self.chain_table_name} LIMIT 1)")
                if c.fetchone()[0]:
                    return
                after = 0
                while True:  # a page at a time: an old log may be large
                    c.execute(f"SELECT rowid, originator_id, originator_version, topic, state "
                              f"FROM {self.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT 10000",
                              (after,))
                    page = [tuple(row) for row in c.fetchall()]
                    if not page:
                        return
                    self._chain(c, page)
                    after = page[-1][0]
        except IntegrityError:
            return  # another process chained it at the same moment

    def _chain(self, c: Any, events: Sequence[tuple[int, Any, int, str, bytes]]) -> None:
        """Write the chain rows of ``events`` (position order), inside the insert's transaction."""
        if not events:
            return
        c.execute(f"SELECT position, link FROM {self.chain_table_name} ORDER BY position DESC LIMIT 1")
        last = c.fetchone()
        head = (int(last[0]), bytes(last[1])) if last is not None else (0, GENESIS)
        c.executemany(f"INSERT INTO {self.chain_table_name} (position, prev, link) VALUES (?, ?, ?)",
                      self.chainer.rows(head, events))

    def chain_head(self) -> tuple[int, bytes]:
        """The last chained ``(position, link)`` (``(0, GENESIS)`` for none)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT position, link FROM {self.chain_table_name} ORDER BY position DESC LIMIT 1")
            last = c.fetchone()
            return (int(last[0]), bytes(last[1])) if last is not None else (0, GENESIS)

    def select_chain(self, after: int, limit: int) -> list[ChainRow]:
        """Chain rows after position ``after``, in position order, at most ``limit``."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT position, prev, link FROM {self.chain_table_name} WHERE position > ? "
                      "ORDER BY position LIMIT ?", (after, limit))
            return [(int(r[0]), int(r[1]), bytes(r[2])) for r in c.fetchall()]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        **_: Any,
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        c.executemany(
            self.insert_events_statement,
            [
                (
                    s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                    s.originator_version,
                    s.topic,
                    s.state,
                )
                for s in stored_events
            ],
        )
        last = self._max_notification_id(c)
        first = last - len(stored_events) + 1
        positions = list(range(first, last + 1))
        self._chain(c, paired(positions, stored_events))
        return positions

    def insert_row_batches(
        self,
        batches: Iterable[Sequence[tuple[str, int, str, bytes]]],
        committed: Callable[[Sequence[tuple[str, int, str, bytes]], list[int]], None] | None = None,
    ) -> None:
        """Insert ready-made ``(originator id hex, version, topic, state)`` rows, a transaction per batch.

        The bulk path's shortcut past :class:`StoredEvent` objects. Each batch is inserted with one
        ``executemany`` on this thread; its ``COMMIT`` (which waits for the disk) runs on a helper thread
        while this one draws the next batch from ``batches``, so producing batches overlaps the disk
        writes. The connection is used by one thread at a time: the next batch starts only after the
        commit returned. ``committed`` hears of each batch and its notification ids, in order. An error
        stops at its batch: earlier batches stay committed.
        """
        iterator = iter(batches)
        batch = next(iterator, None)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crmcore-commit") as helper:
            while batch is not None:
                if not batch:
                    batch = next(iterator, None)
                    continue
                upcoming, problem, done = None, None, None
                with self.datastore.get_connection(commit=True) as conn:
                    try:
                        cursor = conn.cursor()
                        cursor.execute("BEGIN")
                        cursor.executemany(self.insert_events_statement, batch)
                        last = self._max_notification_id(cursor)
                        first = last - len(batch) + 1
                        self._chain(cursor, [(first + i, *row) for i, row in enumerate(batch)])
                        started = threading.Event()
                        done = helper.submit(self._commit_when_started, conn, started)
                        started.wait()  # the helper holds the GIL until its commit lets go of it
                        try:
                            upcoming = next(iterator, None)
                        except BaseException as error:  # reported once the commit settled
                            problem = error
                        done.result()
                    except BaseException as error:
                        if done is not None:
                            wait([done])  # never touch the connection while the helper commits
                        conn.rollback()
                        translated = self._persistence_error(error)
                        if translated is error:
                            raise
                        raise translated from error
                if committed is not None:
                    committed(batch, list(range(last - len(batch) + 1, last + 1)))
                if problem is not None:
                    raise problem
                batch = upcoming

    @staticmethod
    def _commit_when_started(conn: Any, started: threading.Event) -> None:
        started.set()
        conn.commit()

    @staticmethod
    def _persistence_error(error: BaseException) -> BaseException:
        """The ``eventsourcing`` error for an ``sqlite3`` one, as its SQLite transactions raise them."""
        import sqlite3

        from eventsourcing import persistence

        for name in ("InterfaceError", "DataError", "OperationalError", "IntegrityError", "InternalError",
                     "ProgrammingError", "NotSupportedError", "DatabaseError"):
            if isinstance(error, getattr(sqlite3, name)):
                return getattr(persistence, name)(error)  # type: ignore[no-any-return]
        if isinstance(error, sqlite3.Error):
            return persistence.PersistenceError(error)
        return error


def existing_originators(recorder: Any, ids: Sequence[UUID]) -> set[UUID]:
    """Which of ``ids`` have at least one stored event, in a few queries (not one per id).

    SQLite and PostgreSQL are asked with ``IN`` / ``= ANY`` over chunks of ids; other recorders one id at
    a time through ``select_events``.
    """
    from eventsourcing.popo import POPOAggregateRecorder
    from eventsourcing.sqlite import SQLiteAggregateRecorder

    found: set[UUID] = set()
    if isinstance(recorder, POPOAggregateRecorder):
        index = recorder._stored_events_index
        return {i for i in ids if index.get(str(i))}
    if isinstance(recorder, SQLiteAggregateRecorder):
        by_hex = {i.hex: i for i in ids}
        hexes = list(by_hex)
        for start in range(0, len(hexes), 500):
            chunk = hexes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(
                    f"SELECT DISTINCT originator_id FROM {recorder.events_table_name} "
                    f"WHERE originator_id IN ({marks})",
                    chunk,
                )
                found.update(by_hex[row[0]] for row in c.fetchall())
        return found
    try:
        from eventsourcing.postgres import PostgresAggregateRecorder
    except ImportError:  # pragma: no cover - without the postgres extra
        PostgresAggregateRecorder = None  # type: ignore[assignment,misc]  # noqa: N806
    if PostgresAggregateRecorder is not None and isinstance(recorder, PostgresAggregateRecorder):
        from psycopg.sql import SQL, Identifier

        statement = SQL(
            "SELECT DISTINCT originator_id FROM {schema}.{table} WHERE originator_id = ANY(%s)"
        ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            for start in range(0, len(ids), 5000):
                curs.execute(statement, (list(ids[start : start + 5000]),))
                found.update(UUID(str(row["originator_id"])) for row in curs.fetchall())
        return found
    return {i for i in ids if recorder.select_events(i, limit=1)}
