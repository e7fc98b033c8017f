"""The ``eventsourcing`` package's own recorder contract, run against the recorders crmcore configures.

``eventsourcing.tests.persistence.ApplicationRecorderTestCase`` is the suite the package runs against each
of its recorders: inserting and selecting events and notifications (ids, limits, stops, topic filters),
refusing a duplicate version with ``IntegrityError``, and many threads writing and reading at once. Here it
runs against

- :class:`crmcore.stores.BatchedSQLiteApplicationRecorder` directly, on a temporary SQLite file, with
  UUID and with text originator ids;
- the recorder a ``sqlite:///`` store URL configures (which must be that class);
- the recorder a ``postgresql://…?schema=`` store URL configures (which must be
  :class:`crmcore._postgres.UnpipelinedPostgresApplicationRecorder`), in a fresh schema (skipped without
  PostgreSQL).

The contract module imports the AES cipher, so it needs ``pycryptodome`` (``eventsourcing[crypto]``, in
the ``test`` extra).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any, Literal
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests import persistence as contract
from eventsourcing.utils import Environment

from crmcore.stores import BatchedSQLiteApplicationRecorder, parse_store_url
from tests.conftest import POSTGRES_ENV_VAR, drop_schema, postgres_base_url


class _ClosesWhatItOpens:
    """Closes the datastores a test opened, once the threads the test started have ended.

    The contract's concurrency test tells its reader threads to stop but does not wait for them: closing
    a SQLite connection that one of them is still using would crash the interpreter.
    """

    def setUp(self) -> None:
        self._closers: list[Any] = []
        self._threads_before = set(threading.enumerate())

    def tearDown(self) -> None:
        for thread in set(threading.enumerate()) - self._threads_before:
            if not thread.daemon and thread is not threading.current_thread():
                thread.join(timeout=30)
        for close in self._closers:
            close()


class _TempSQLiteFile(_ClosesWhatItOpens):
    """A fresh SQLite file per test, deleted afterwards."""

    db_path: str

    def setUp(self) -> None:
        super().setUp()
        self._tmp = tempfile.TemporaryDirectory(prefix="crmcore-contract-")
        self.db_path = str(Path(self._tmp.name) / "events.db")

    def tearDown(self) -> None:
        super().tearDown()
        self._tmp.cleanup()


class TestBatchedSQLiteApplicationRecorder(
    _TempSQLiteFile, contract.ApplicationRecorderTestCase[BatchedSQLiteApplicationRecorder]
):
    originator_id_type: Literal["uuid", "text"] = "uuid"

    def create_recorder(self) -> BatchedSQLiteApplicationRecorder:
        datastore = SQLiteDatastore(
            db_name=self.db_path, pool_size=100, originator_id_type=self.originator_id_type
        )
        self._closers.append(datastore.close)
        recorder = BatchedSQLiteApplicationRecorder(datastore)
        recorder.create_table()
        return recorder


class TestBatchedSQLiteApplicationRecorderWithTextOriginatorIds(TestBatchedSQLiteApplicationRecorder):
    originator_id_type: Literal["uuid", "text"] = "text"

    def new_originator_id(self) -> UUID | str:
        return f"party-{uuid4()}"


def _recorder_for(url: str) -> tuple[ApplicationRecorder, InfrastructureFactory[Any]]:
    """The application recorder (and its factory) exactly as crmcore configures it for ``url``."""
    env = Environment("crmcore", parse_store_url(url).eventsourcing_env())
    factory: InfrastructureFactory[Any] = InfrastructureFactory.construct(env)
    return factory.application_recorder(), factory


class TestSQLiteStoreRecorder(_TempSQLiteFile, contract.ApplicationRecorderTestCase[ApplicationRecorder]):
    def create_recorder(self) -> ApplicationRecorder:
        recorder, factory = _recorder_for(f"sqlite:///{self.db_path}")
        self._closers.append(factory.close)
        assert type(recorder) is BatchedSQLiteApplicationRecorder
        return recorder


class TestPostgresStoreRecorder(
    _ClosesWhatItOpens, contract.ApplicationRecorderTestCase[ApplicationRecorder]
):
    def setUp(self) -> None:
        super().setUp()
        base = postgres_base_url()
        if base is None:
            pytest.skip(f"PostgreSQL not configured: set {POSTGRES_ENV_VAR} or run scripts/run_tests.py")
        import psycopg

        self.schema = f"t_{uuid4().hex[:16]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        self.url = f"{base}?schema={self.schema}"

    def tearDown(self) -> None:
        super().tearDown()
        drop_schema(self.schema)

    def create_recorder(self) -> ApplicationRecorder:
        from crmcore._postgres import UnpipelinedPostgresApplicationRecorder

        recorder, factory = _recorder_for(self.url)
        self._closers.append(factory.close)
        assert type(recorder) is UnpipelinedPostgresApplicationRecorder
        return recorder
