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
from psycopg.sql import SQL, Identifier

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
    """

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.lock_and_notify_statement = SQL("; ").join(
            [*self.lock_table_statements, SQL("NOTIFY {0}").format(Identifier(self.channel_name))]
        )

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
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
