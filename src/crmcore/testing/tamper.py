"""Tampering with a store's stored log, as someone with write access to the database could: for the tests of
the tamper-evident chain (design 07 § 2) on every store. Never use it on data you care about."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from crmcore._chain import chain_table_name

__all__ = ["Tamper"]


class Tamper:
    """Reads and edits the stored events and chain rows of ``crm``'s store directly (SQLite and PostgreSQL
    through their tables; the memory store through its lists: alterations only)."""

    def __init__(self, crm: Any) -> None:
        self.crm = crm
        self.recorder = crm._app.recorder
        self.kind = type(self.recorder).__name__
        self.postgres = "Postgres" in self.kind
        self.memory = "POPO" in self.kind
        events = getattr(self.recorder, "events_table_name", "")
        if self.postgres:
            schema = self.recorder.datastore.schema
            self.events, self.chain = f'"{schema}"."{events}"', f'"{schema}"."{chain_table_name(events)}"'
            self.position, self.mark = "notification_id", "%s"
        else:
            self.events, self.chain = events, chain_table_name(events)
            self.position, self.mark = "rowid", "?"

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        sql = sql.replace("?", self.mark)
        with self.recorder.datastore.transaction(commit=True) as c:
            c.execute(sql, params)
            try:
                return list(c.fetchall())
            except Exception:  # a statement with no rows
                return []

    def state(self, position: int) -> bytes:
        """The stored bytes of the event at ``position``."""
        if self.memory:
            return bytes(self.recorder._stored_events[position - 1].state)
        (row,) = self._run(f"SELECT state FROM {self.events} WHERE {self.position} = ?", (position,))
        return bytes(row["state"] if isinstance(row, dict) else row[0])

    def set_state(self, position: int, state: bytes) -> None:
        if self.memory:
            held = self.recorder._stored_events
            held[position - 1] = replace(held[position - 1], state=state)
            return
        self._run(f"UPDATE {self.events} SET state = ? WHERE {self.position} = ?", (state, position))

    def flip_byte(self, position: int, index: int, value: int | None = None) -> None:
        """Change one byte of the stored event at ``position`` (to ``value``, default: its bits flipped)."""
        state = bytearray(self.state(position))
        state[index] = (state[index] ^ 0xFF) if value is None else value
        self.set_state(position, bytes(state))

    def set_topic(self, position: int, topic: str) -> None:
        if self.memory:
            held = self.recorder._stored_events
            held[position - 1] = replace(held[position - 1], topic=topic)
            return
        self._run(f"UPDATE {self.events} SET topic = ? WHERE {self.position} = ?", (topic, position))

    def set_version(self, position: int, version: int) -> None:
        if self.memory:
            held = self.recorder._stored_events
            held[position - 1] = replace(held[position - 1], originator_version=version)
            return
        self._run(f"UPDATE {self.events} SET originator_version = ? WHERE {self.position} = ?",
                  (version, position))

    def delete_event(self, position: int) -> None:
        self._run(f"DELETE FROM {self.events} WHERE {self.position} = ?", (position,))

    def delete_chain_row(self, position: int) -> None:
        self._run(f"DELETE FROM {self.chain} WHERE position = ?", (position,))

    def set_link(self, position: int, link: bytes) -> None:
        if self.memory:
            p, prev, _ = self.recorder.chain[position]
            self.recorder.chain[position] = (p, prev, link)
            return
        self._run(f"UPDATE {self.chain} SET link = ? WHERE position = ?", (link, position))

    def rechain(self, key: bytes) -> None:
        """Recompute every chain row under ``key`` from the events as stored now (what someone who can
        write to the database, and knows the key, could do to hide a change)."""
        from crmcore._chain import GENESIS, Chainer

        rows = self.chain_rows()
        events = self.events_after(0)
        new = Chainer(key).rows((0, GENESIS), events)
        assert len(new) == len(rows)
        for position, prev, link in new:
            if self.memory:
                self.recorder.chain[position] = (position, prev, link)
            else:
                self._run(f"UPDATE {self.chain} SET prev = ?, link = ? WHERE position = ?",
                          (prev, link, position))

    def chain_rows(self) -> list[tuple[int, int, bytes]]:
        return list(self.recorder.select_chain(0, 10**9))

    def events_after(self, after: int) -> list[tuple[int, Any, int, str, bytes]]:
        page = self.recorder.select_notifications(start=after, limit=10**9, inclusive_of_start=False)
        return [(n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state)) for n in page]

    def snapshots(self) -> list[tuple[Any, int, bytes]]:
        """Every stored snapshot: (originator id, version, state)."""
        store = self.crm._app.snapshots
        recorder = store.recorder
        if self.memory:
            return [(s.originator_id, s.originator_version, bytes(s.state)) for s in recorder._stored_events]
        table = self._snapshot_table(recorder)
        rows = self._run(f"SELECT originator_id, originator_version, state FROM {table}")
        return [tuple(r.values()) if isinstance(r, dict) else (r[0], r[1], bytes(r[2])) for r in rows]

    def set_snapshot_state(self, originator_id: Any, version: int, state: bytes) -> None:
        recorder = self.crm._app.snapshots.recorder
        if self.memory:
            held = recorder._stored_events
            for index, stored in enumerate(held):
                if stored.originator_id == originator_id and stored.originator_version == version:
                    held[index] = replace(stored, state=state)
            return
        self._run(f"UPDATE {self._snapshot_table(recorder)} SET state = ? WHERE originator_id = ? "
                  "AND originator_version = ?", (state, originator_id, version))

    def _snapshot_table(self, recorder: Any) -> str:
        if self.postgres:
            return f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
        return str(recorder.events_table_name)

    def drop_chain(self) -> None:
        """Remove the chain table's rows (a log written before the chain existed)."""
        self._run(f"DELETE FROM {self.chain}")
