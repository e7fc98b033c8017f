"""Views as they stood at past moments: effective-time filters, and many moments folded in one read.

"As it stood at D" keeps the events effective by D; "as it was known at D" also drops the events recorded
after D (a back-dated entry changes the first, never the second). :class:`MomentFolds` computes a view at
many moments in one pass over the log: since an aggregate's effective times never go backwards, the row at
each moment is the row after the aggregate's last event before it, so each record is applied once and
each row is copied at most once per moment. A key with a record counting at a moment already passed
(its times went backwards across a moment) is reported in ``irregular`` for the caller to fold again the
slow way.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from eventsourcing.domain import DomainEventProtocol

from crmcore.projections.base import RecordView, Row, fold_records
from crmcore.projections.records import StoredRecord

__all__ = ["MomentFolds", "events_effective_by", "fold_at_moments", "records_effective_by", "utc_text"]

_parse = datetime.fromisoformat


def events_effective_by(
    at: datetime, known_at: datetime | None = None,
) -> Callable[[DomainEventProtocol[Any]], bool]:
    """Keeps the events effective at or before ``at`` (and, with ``known_at``, recorded by then)."""

    def accept(event: DomainEventProtocol[Any]) -> bool:
        e = cast(Any, event)
        return bool(e.effective_at <= at and (known_at is None or e.timestamp <= known_at))

    return accept


def records_effective_by(
    at: datetime, known_at: datetime | None = None, *, strictly: bool = False,
) -> Callable[[StoredRecord], bool]:
    """Keeps records effective at or before ``at`` (and recorded by ``known_at``); ``strictly``: before."""
    until = utc_text(at)
    known = utc_text(known_at) if known_at is not None else None

    def accept(record: StoredRecord) -> bool:
        effective = _effective(record.data)
        if known is None:
            return effective < until if strictly else effective <= until
        recorded = utc_text(record.data["timestamp"])
        if strictly:
            return effective < until and recorded < known
        return effective <= until and recorded <= known

    return accept


def utc_text(moment: datetime | str) -> str:
    """A moment as UTC ISO text, whose string order is time order (the form stored times are mostly in).

    ``datetime.isoformat`` leaves out a zero fraction of a second: "...:05+00:00" still sorts before
    "...:05.000001+00:00" because "+" sorts before ".".
    """
    if isinstance(moment, str):
        if moment.endswith("+00:00"):
            return moment
        moment = _parse(moment)
    return moment.astimezone(UTC).isoformat()


def _effective(data: dict[str, Any]) -> str:
    """When the record took effect, as UTC text (its recording time for events without an effective time)."""
    return utc_text(data.get("effective_at") or data["timestamp"])


class MomentFolds:
    """A record view folded at several moments at once; feed pages with :meth:`add`, then :meth:`result`.

    The row at a moment comes from the records effective strictly before it (with ``as_known``, also
    recorded strictly before it).
    """

    def __init__(self, view: RecordView, moments: Sequence[datetime], *, as_known: bool = False) -> None:
        self.moments = [utc_text(m) for m in moments]
        if any(b <= a for a, b in zip(self.moments, self.moments[1:], strict=False)):
            raise ValueError("moments must be strictly ascending")
        self.view = view
        self.as_known = as_known
        #: Keys whose times went backwards: their rows at each moment must be folded again (:meth:`replace`).
        self.irregular: set[str] = set()
        self._topics = frozenset(view.topics())
        self._folds: list[dict[str, Row]] = [{} for _ in self.moments]
        self._rows: dict[str, Row] = {}
        self._sealed: dict[str, int] = {}

    def add(self, records: Iterable[StoredRecord]) -> None:
        """Apply ``records`` (in log order)."""
        moments, folds, rows, sealed = self.moments, self._folds, self._rows, self._sealed
        key_of, evolve = self.view.record_key, self.view.evolve_record
        topics, as_known = self._topics, self.as_known
        for record in records:
            if record.topic not in topics:
                continue
            at = _effective(record.data)
            if as_known:
                at = max(at, utc_text(record.data["timestamp"]))
            key = key_of(record)
            first = bisect_right(moments, at)  # the first moment this record counts for
            done = sealed.get(key, 0)
            if first > done:
                row = rows.get(key)
                if row is not None:
                    kept = dict(row)
                    for index in range(done, first):
                        folds[index][key] = kept
                sealed[key] = first
            elif first < done:  # it counts at moments already sealed without it
                self.irregular.add(key)
            new = evolve(rows.get(key), record)
            if new is None:
                rows.pop(key, None)
            else:
                rows[key] = new

    def replace(self, index: int, keys: Iterable[str], rows: dict[str, Row]) -> None:
        """Set the rows of ``keys`` at moment ``index`` to those in ``rows`` (absent: no row)."""
        fold = self._folds[index]
        for key in keys:
            fold.pop(key, None)
            if key in rows:
                fold[key] = rows[key]

    def result(self) -> list[dict[str, Row]]:
        """The view's rows at each moment (call once, after the last :meth:`add` and :meth:`replace`)."""
        count = len(self.moments)
        for key, row in self._rows.items():  # from its last record's first moment on, a key's row is final
            for index in range(self._sealed.get(key, 0), count):
                self._folds[index][key] = row
        return self._folds


def fold_at_moments(
    view: RecordView,
    pages: Callable[[], Iterable[Iterable[StoredRecord]]],
    moments: Sequence[datetime],
    *,
    as_known: bool = False,
) -> list[dict[str, Row]]:
    """``view`` as it stood just before each of ``moments`` (strictly ascending), reading ``pages()`` once.

    A second read (``pages()`` again) happens only when some key's times went backwards: those keys are
    then folded again at each moment from their own records.
    """
    folds = MomentFolds(view, moments, as_known=as_known)
    for page in pages():
        folds.add(page)
    irregular = folds.irregular
    if irregular:
        key_of = view.record_key
        theirs = [r for page in pages() for r in page if key_of(r) in irregular]
        for index, moment in enumerate(moments):
            accept = records_effective_by(moment, moment if as_known else None, strictly=True)
            folds.replace(index, irregular, fold_records(view, theirs, accept=accept))
    return folds.result()
