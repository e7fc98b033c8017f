"""An in-process mirror of the ``party_identity`` view, indexed by blocking key, for near matches on entry.

Checking one new party against every stored one must not read and prepare the whole store each time. The
mirror is loaded once from the view (rows and the position they stand at), then kept up to date by folding
the identity events recorded since — by any process — with the view's own pure ``evolve``. Applying an
event the loaded rows already reflect changes nothing (every identity change sets values, and list changes
add what is missing and remove what is there), so reading the position before the rows is safe.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from eventsourcing.domain import DomainEventProtocol

from crmcore.matching import MatchRecord, _prepare
from crmcore.projections.base import Row
from crmcore.projections.identity import IdentityView

__all__ = ["IdentityIndex", "record_of_row"]

#: Blocks with more parties than this are too common to narrow anything down (a frequent surname).
MAX_BLOCK = 500

Loader = Callable[[], tuple[int, list[Row]]]
EventsAfter = Callable[[int], Iterator[tuple[int, DomainEventProtocol[Any]]]]


def record_of_row(row: Row) -> MatchRecord:
    """The detector's record of a ``party_identity`` row."""
    address = row.get("address") or {}
    return MatchRecord(
        id=row["id"], kind=row["kind"], given_name=row.get("given_name"), family_name=row.get("family_name"),
        name=row.get("name"), organization_name=row.get("organization_name"),
        emails=tuple(e.lower() for e in row.get("emails") or ()), phones=tuple(row.get("phones") or ()),
        birth_date=row.get("birth_date"), street=address.get("street"),
        house_number=address.get("street_number"), postcode=address.get("postcode"),
        locality=address.get("locality"), country=address.get("country"), vat=row.get("vat_number"),
        web_links=tuple(row.get("web_links") or ()),
    )


class IdentityIndex:
    """Every party's match record, and which parties share each blocking key."""

    def __init__(self) -> None:
        self._view = IdentityView()
        self._lock = threading.Lock()
        self._position: int | None = None
        self._rows: dict[str, Row] = {}
        self._records: dict[str, MatchRecord] = {}
        self._keys: dict[str, list[str]] = {}
        self._blocks: dict[str, set[str]] = defaultdict(set)

    def refresh(self, load: Loader, events_after: EventsAfter) -> None:
        """Load the view once, then fold the identity events recorded since the last refresh."""
        with self._lock:
            if self._position is None:
                position, rows = load()
                for loaded in rows:
                    self._rows[loaded["id"]] = loaded
                self._reindex(list(self._rows))
                self._position = position
            changed: set[str] = set()
            for position, event in events_after(self._position):
                key = self._view.key(event)
                evolved = self._view.evolve(self._rows.get(key), event)
                if evolved is None:
                    self._rows.pop(key, None)
                else:
                    self._rows[key] = evolved
                changed.add(key)
                self._position = position
            self._reindex(changed)

    def records(self) -> list[MatchRecord]:
        """Every party's record, in id order."""
        with self._lock:
            return [self._records[k] for k in sorted(self._records)]

    def candidates(self, record: MatchRecord) -> list[MatchRecord]:
        """The parties sharing a blocking key with ``record`` (blocks of common keys skipped)."""
        with self._lock:
            found: set[str] = set()
            for key in _prepare(record).keys:
                block = self._blocks.get(key, ())
                if len(block) <= MAX_BLOCK:
                    found.update(block)
            return [self._records[k] for k in sorted(found)]

    def _reindex(self, ids: Iterable[str]) -> None:
        for party in ids:
            for key in self._keys.pop(party, ()):
                block = self._blocks.get(key)
                if block is not None:
                    block.discard(party)
                    if not block:
                        del self._blocks[key]
            self._records.pop(party, None)
            row = self._rows.get(party)
            if row is None:
                continue
            record = record_of_row(row)
            keys = list(_prepare(record).keys)
            self._records[party] = record
            self._keys[party] = keys
            for key in keys:
                self._blocks[key].add(party)
