"""The PostgreSQL application recorder a ``postgresql://`` store uses.

A module of its own so that importing :mod:`crmcore.stores` never imports psycopg, which only the
``postgres`` extra installs: ``eventsourcing`` imports this module when it resolves the recorder topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from crmcore._chain import GENESIS, Chainer, ChainRow, chain_table_name, paired

__all__ = ["UnpipelinedPostgresApplicationRecorder"]


class UnpipelinedPostgresApplicationRecorder(PostgresApplicationRecorder):
    """The PostgreSQL recorder, inserting a save's events in one ordinary transaction, whatever its size.

    The stock recorder sends its statements in psycopg's pipeline mode and then calls ``Pipeline.sync()``.
    In pipeline mode psycopg writes without blocking and stops writing once its queue of commands is
    empty, even if libpq still holds the end of the last one (``pipeline_communicate`` ignores what
    ``PQflush()`` returns); ``sync()`` then waits for an answer while the server waits for the rest of
    the statement. A save bigger than the socket buffers take in at once (a few MB on a local
    connection, less over a network) hangs forever.

    Outside pipeline mode psycopg sends a whole statement before it waits for the answer. The statements
    are the stock ones, in one transaction: ``SET LOCAL lock_timeout``, ``LOCK TABLE … IN EXCLUSIVE MODE``
    and ``NOTIFY`` as one simple query, then the ``INSERT … RETURNING notification_id``. That is four
    round trips (``BEGIN``, those two, ``COMMIT``) where the pipelined path takes five.

    ``POSTGRES_ENABLE_DB_FUNCTIONS`` is not honoured: the stored function inserts without the table lock
    that keeps positions in commit order.

    Every insert also writes the events' rows of the tamper-evident chain (design 07 § 2) in the same
    transaction, after the table lock: the head read there is the last.
    """

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.lock_and_notify_statement = SQL("; ").join(
            [*self.lock_table_statements, SQL("NOTIFY {0}").format(Identifier(self.channel_name))]
        )
        self.chainer = Chainer()
        chain = SQL("{0}.{1}").format(Identifier(datastore.schema),
                                      Identifier(chain_table_name(events_table_name)))
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {0} (position bigint PRIMARY KEY, prev bigint NOT NULL, "
            "link bytea NOT NULL)").format(chain))
        self.chain_head_statement = SQL(
            "SELECT position, link FROM {0} ORDER BY position DESC LIMIT 1").format(chain)
        self.chain_insert_statement = SQL(
            "INSERT INTO {0} (position, prev, link) SELECT * FROM unnest(%s::bigint[], %s::bigint[], "
            "%s::bytea[])").format(chain)
        self.chain_select_statement = SQL(
            "SELECT position, prev, link FROM {0} WHERE position > %s ORDER BY position LIMIT %s"
        ).format(chain)
        self.chain_any_statement = SQL("SELECT 1 FROM {0} LIMIT 1").format(chain)
        self.events_page_statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {0}.{1} "
            "WHERE notification_id > %s ORDER BY notification_id LIMIT 10000").format(
            Identifier(datastore.schema), Identifier(events_table_name))

    def start_chain(self, key: bytes) -> None:
        """Key the chain; a log with events and no chain yet (written before it existed) is chained now,
        under the table lock that holds every other writer back."""
        self.chainer = Chainer(key)
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self.chain_any_statement)
            if curs.fetchone() is not None:
                return  # chained already: no lock needed
        with self.datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self.lock_and_notify_statement, prepare=False)
            curs.execute(self.chain_any_statement)
            if curs.fetchone() is not None:
                return
            after = 0
            while True:  # a page at a time: an old log may be large
                curs.execute(self.events_page_statement, (after,))
                page = [(int(r[0]), r[1], int(r[2]), r[3], bytes(r[4])) for r in curs.fetchall()]
                if not page:
                    return
                self._chain(curs, page)
                after = page[-1][0]

    def _chain(self, curs: Any, events: Sequence[tuple[int, Any, int, str, bytes]]) -> None:
        """Write the chain rows of ``events`` (position order), inside the insert's transaction."""
        if not events:
            return
        curs.execute(self.chain_head_statement)
        last = curs.fetchone()
        if last is None:
            head = (0, GENESIS)
        elif isinstance(last, dict):
            head = (int(last["position"]), bytes(last["link"]))
        else:
            head = (int(last[0]), bytes(last[1]))
        rows = self.chainer.rows(head, events)
        curs.execute(self.chain_insert_statement,
                     ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]))

    def chain_head(self) -> tuple[int, bytes]:
        """The last chained ``(position, link)`` (``(0, GENESIS)`` for none)."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self.chain_head_statement)
            last = curs.fetchone()
            return (int(last[0]), bytes(last[1])) if last is not None else (0, GENESIS)

    def select_chain(self, after: int, limit: int) -> list[ChainRow]:
        """Chain rows after position ``after``, in position order, at most ``limit``."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(self.chain_select_statement, (after, limit))
            return [(int(r[0]), int(r[1]), bytes(r[2])) for r in curs.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)  # a process recorder's tracking record
            if not stored_events:
                return None
            curs.execute(self.lock_and_notify_statement, prepare=False)
            curs.execute(
                self.insert_events_statement,
                (
                    [
                        self.construct_pg_stored_event(
                            s.originator_id, s.originator_version, s.topic, s.state
                        )
                        for s in stored_events
                    ],
                ),
            )
            positions = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
            if positions:
                self._chain(curs, paired(positions, stored_events))
            return positions
