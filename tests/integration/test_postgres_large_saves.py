"""Saves of any size complete on PostgreSQL, with every guarantee of the stock recorder kept.

The stock ``eventsourcing`` recorder sends a save in psycopg's pipeline mode, which hangs forever once the
save is bigger than the socket buffers take in at once (a few MB on a local connection). crmcore's
:class:`~crmcore._postgres.UnpipelinedPostgresApplicationRecorder` inserts in one ordinary transaction.

Every save here runs on a daemon thread that must finish in time, so a regression fails the test instead
of hanging the suite; the schema's teardown ends any backend still busy in it before dropping it.
Skipped without ``CRMCORE_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.utils import Environment

from crmcore import CRM
from crmcore.stores import parse_store_url
from crmcore.testing.campaigns import running_campaign
from tests.conftest import POSTGRES_ENV_VAR, drop_schema, postgres_base_url

T = TypeVar("T")

#: Over 16 MB: several times what the pipelined path could send before it hung.
BIG = 17 * 1024 * 1024
#: Seconds a save may take before the test calls it hung (a 17 MB save takes 2-3 s here).
WITHIN = 120.0
EVENTS_TABLE = "crmcore_events"


def finishes(work: Callable[[], T], within: float = WITHIN) -> T:
    """What ``work()`` returns (or raises), run on a daemon thread; fails if it takes over ``within`` s."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, name="crmcore-test-save", daemon=True)
    thread.start()
    thread.join(within)
    if thread.is_alive():
        pytest.fail(f"the save was still running after {within:.0f} s: it hangs")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def _connect() -> Any:
    import psycopg

    base = postgres_base_url()
    assert base is not None
    return psycopg.connect(base, autocommit=True)


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh schema; afterwards, backends still busy in it (a hung save) are ended and it is dropped."""
    if postgres_base_url() is None:
        pytest.skip(f"PostgreSQL not configured: set {POSTGRES_ENV_VAR} or run scripts/run_tests.py")
    name = f"t_{uuid4().hex[:16]}"
    with _connect() as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with _connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND state <> 'idle' AND position(%s in query) > 0",
                (f'"{name}"',),
            )
        drop_schema(name)


def _recorder(
    schema: str, name: str = "crmcore", **env: str
) -> tuple[ApplicationRecorder, InfrastructureFactory[Any]]:
    """The application recorder a ``postgresql://…?schema=`` store configures for the application ``name``
    (its table is ``<name>_events``), ``env`` overriding."""
    settings = parse_store_url(f"{postgres_base_url()}?schema={schema}")
    factory: InfrastructureFactory[Any] = InfrastructureFactory.construct(
        Environment(name, {**settings.eventsourcing_env(), **env})
    )
    return factory.application_recorder(), factory


@pytest.fixture
def recorder(schema: str) -> Iterator[ApplicationRecorder]:
    found, factory = _recorder(schema)
    try:
        yield found
    finally:
        factory.close()


def stored(originator_id: UUID, version: int, size: int, fill: int = 0x61) -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id, originator_version=version, topic="tests:Big", state=bytes([fill]) * size
    )


def positions(recorder: ApplicationRecorder) -> list[tuple[int, UUID, int]]:
    """Every stored event's (notification id, originator id, version), in log order."""
    return [
        (n.id, UUID(str(n.originator_id)), n.originator_version)
        for n in recorder.select_notifications(start=None, limit=1_000_000)
    ]


class _LockHolder:
    """Another transaction holding the events table's write lock until released."""

    def __init__(self, schema: str) -> None:
        self.conn = _connect()
        self.conn.execute("BEGIN")
        self.conn.execute(f'LOCK TABLE "{schema}"."{EVENTS_TABLE}" IN EXCLUSIVE MODE')

    def release(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


def test_the_postgresql_store_uses_the_unpipelined_recorder(recorder: ApplicationRecorder) -> None:
    from crmcore._postgres import UnpipelinedPostgresApplicationRecorder

    assert type(recorder) is UnpipelinedPostgresApplicationRecorder


def test_a_save_of_one_event_over_16_mb_completes(recorder: ApplicationRecorder) -> None:
    event = stored(uuid4(), 1, BIG)

    ids = finishes(lambda: recorder.insert_events([event]))

    assert ids is not None
    assert len(ids) == 1
    assert recorder.select_events(event.originator_id) == [event]


def test_a_save_of_several_events_totalling_over_16_mb_completes(recorder: ApplicationRecorder) -> None:
    first, second = uuid4(), uuid4()
    events = [stored(first, 1, BIG // 4, 0x61), stored(first, 2, BIG // 4, 0x62),
              stored(second, 1, BIG // 4, 0x63), stored(second, 2, BIG // 4 + 1, 0x64)]

    ids = finishes(lambda: recorder.insert_events(events))

    assert ids is not None
    assert len(ids) == 4
    assert [*recorder.select_events(first), *recorder.select_events(second)] == events


def test_notification_ids_come_back_in_the_order_of_the_events(recorder: ApplicationRecorder) -> None:
    recorder.insert_events([stored(uuid4(), 1, 10)])
    events = [stored(uuid4(), v, 500) for v in (1, 2, 3) for _ in range(1700)]

    ids = finishes(lambda: recorder.insert_events(events))

    assert ids is not None
    assert list(ids) == sorted(set(ids))
    assert len(ids) == len(events)
    by_id = {n: (o, v) for n, o, v in positions(recorder)}
    assert [by_id[n] for n in ids] == [(e.originator_id, e.originator_version) for e in events]


def test_a_big_save_that_conflicts_raises_integrity_error_and_stores_nothing(
    recorder: ApplicationRecorder,
) -> None:
    taken_id = uuid4()
    recorder.insert_events([stored(taken_id, 1, 100)])
    before = positions(recorder)
    newcomer = uuid4()

    with pytest.raises(IntegrityError):
        finishes(lambda: recorder.insert_events([stored(newcomer, 1, BIG), stored(taken_id, 1, 9)]))

    assert positions(recorder) == before
    assert recorder.select_events(newcomer) == []
    assert recorder.insert_events([stored(newcomer, 1, 10)])  # the connection is fine afterwards


def test_a_save_waits_for_the_table_lock_another_transaction_holds(
    schema: str, recorder: ApplicationRecorder
) -> None:
    holder = _LockHolder(schema)
    try:
        done = threading.Event()

        def save() -> None:
            recorder.insert_events([stored(uuid4(), 1, 10)])
            done.set()

        threading.Thread(target=save, daemon=True).start()
        assert not done.wait(1.0), "the save did not wait for the table lock"
    finally:
        holder.release()
    assert done.wait(WITHIN)
    assert len(positions(recorder)) == 1


def test_a_save_gives_up_once_the_lock_timeout_passes(schema: str) -> None:
    recorder, factory = _recorder(schema, POSTGRES_LOCK_TIMEOUT="1")
    holder = _LockHolder(schema)
    try:
        once = type(recorder).insert_events.__wrapped__  # type: ignore[attr-defined]  # one attempt, no retries
        started = time.monotonic()
        with pytest.raises(OperationalError, match="lock timeout"):
            finishes(lambda: once(recorder, [stored(uuid4(), 1, 10)]))
        assert time.monotonic() - started < 10
    finally:
        holder.release()
        factory.close()


def test_a_save_notifies_the_events_table_channel(schema: str) -> None:
    name = f"n{uuid4().hex[:12]}"  # channels are database-wide: one no other test or process notifies
    recorder, factory = _recorder(schema, name)
    try:
        with _connect() as listener:
            listener.execute(f'LISTEN "{name}_events"')
            finishes(lambda: recorder.insert_events([stored(uuid4(), 1, BIG)]))

            heard = [n.channel for n in listener.notifies(timeout=10, stop_after=1)]
    finally:
        factory.close()

    assert heard == [f"{name}_events"]


def test_launching_a_campaign_to_200_000_recipients_saves_on_postgresql(schema: str) -> None:
    recipients = [uuid4() for _ in range(200_000)]  # the launch records 18 MB, the wave as much
    campaign = running_campaign(newsletter=recipients, at=datetime(2024, 3, 1, 9, tzinfo=UTC))

    with CRM(f"{postgres_base_url()}?schema={schema}") as crm:
        recordings = finishes(lambda: crm._save(campaign))
        audience = crm.campaign_audience(campaign.id)

    assert [r.notification.id for r in recordings] == sorted(r.notification.id for r in recordings)
    assert len(audience.recipients["newsletter"]) == len(recipients)
