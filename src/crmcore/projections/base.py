"""Views: pure folds over events into keyed rows, testable with no database."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.utils import get_topic

from crmcore.projections.records import StoredRecord, record_of

__all__ = ["RecordView", "Row", "View", "apply_records", "combine_parts", "fold", "fold_records", "matches"]

#: A view's row: JSON-native data (str, int, bool, None, lists and dicts of those).
Row = dict[str, Any]


class View(ABC):
    """A read model defined as a pure fold.

    Subclasses name the view, give it a ``version`` (raise it when the fold changes: the view is rebuilt
    from zero), list the event classes they read, say which row an event touches (by default, its
    aggregate's) and how it changes it. ``evolve`` must be pure: the same row and event always give the
    same result, and it must not mutate its inputs.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    event_classes: ClassVar[tuple[type[Any], ...]]
    #: Above 0, the storage may keep the rows packed in buckets by the key's group (up to its last ``:``)
    #: and its last ``packed_rows`` characters (:meth:`~crmcore.projections.storage.ViewStorage.pack_rows`):
    #: for views of many small rows that are mostly read by group. Raise ``version`` when changing it.
    packed_rows: ClassVar[int] = 0

    @classmethod
    def topics(cls) -> list[str]:
        """The stored topics of the events this view reads (the store filters on them)."""
        return [get_topic(c) for c in cls.event_classes]

    def key(self, event: DomainEventProtocol[Any]) -> str:
        """The key of the row ``event`` changes (default: the id of the aggregate it happened to)."""
        return str(event.originator_id)

    @abstractmethod
    def evolve(self, row: Row | None, event: DomainEventProtocol[Any]) -> Row | None:
        """The row after ``event`` (``None``: the row does not exist, or is deleted)."""


class RecordView(View):
    """A view folded from stored records (:class:`StoredRecord`), so replay never builds event objects.

    Subclasses write one fold, :meth:`evolve_record`, over the record's JSON-native data; folding domain
    events (:meth:`evolve`) goes through the same code via :func:`record_of`. ``evolve_record`` receives a
    row the caller owns: it may assign the row's fields and return it, but must not change values nested
    in it (lists, dicts) in place - replace them instead.
    """

    #: Topics whose records a catch-up may hand over only parsed: the values the transcoder wraps (times,
    #: ids) left as stored (``{"_type_": ..., "_data_": ...}``), the originator id as the store gives it.
    #: A view naming any must read both forms alike; it saves decoding where it reads few fields.
    skimmed_topics: ClassVar[frozenset[str]] = frozenset()

    def key(self, event: DomainEventProtocol[Any]) -> str:
        return self.record_key(record_of(event))

    def evolve(self, row: Row | None, event: DomainEventProtocol[Any]) -> Row | None:
        return self.evolve_record(None if row is None else dict(row), record_of(event))

    def record_key(self, record: StoredRecord) -> str:
        """The key of the row ``record`` changes (default: the originator id)."""
        return record.originator_id

    @abstractmethod
    def evolve_record(self, row: Row | None, record: StoredRecord) -> Row | None:
        """The row after ``record`` (``row`` is the caller's own copy: it may be changed and returned)."""

    def evolve_page(self, records: Iterable[StoredRecord], rows: dict[str, Row]) -> None:
        """Apply ``records`` in order to ``rows``, which the caller owns whole (no row is shared), in place;
        records of other topics are skipped.

        What a rebuild calls, page by page. The default applies :meth:`record_key` and
        :meth:`evolve_record` to each record; a view with a hot fold may override it with one tighter loop,
        giving the same rows (its :meth:`evolve_record` is then best written in terms of it).
        """
        topics = frozenset(self.topics())
        record_key, evolve, get = self.record_key, self.evolve_record, rows.get
        for record in records:
            if record[3] in topics:  # [3]: the topic
                key = record_key(record)
                new = evolve(get(key), record)
                if new is None:
                    rows.pop(key, None)
                else:
                    rows[key] = new

    def combine(self, first: Row, second: Row) -> Row:
        """The row folded from the records of two rows of the same key, each folded from its own records.

        Only views whose rows gather the records of several aggregates (a ``record_key`` other than the
        originator id) and whose fold is commutative define it; such a view can then be folded share by
        share on several processes, the rows of one key put together with this. Must not change its
        inputs.
        """
        raise NotImplementedError(f"view {self.name!r} cannot combine rows")

    @classmethod
    def combines(cls) -> bool:
        """Whether the view defines :meth:`combine`."""
        return cls.combine is not RecordView.combine


def fold(
    view: View,
    events: Iterable[DomainEventProtocol[Any]],
    rows: Mapping[str, Row] | None = None,
    *,
    accept: Callable[[DomainEventProtocol[Any]], bool] | None = None,
) -> dict[str, Row]:
    """Apply ``events`` in order to ``rows`` (default: empty) and return the new rows.

    Events of classes the view does not read are skipped, as are events ``accept`` rejects.
    """
    classes = view.event_classes
    result = dict(rows or {})
    for event in events:
        if not isinstance(event, classes) or (accept is not None and not accept(event)):
            continue
        key = view.key(event)
        new = view.evolve(result.get(key), event)
        if new is None:
            result.pop(key, None)
        else:
            result[key] = new
    return result


def combine_parts(view: View, parts: Iterable[Mapping[str, Row]]) -> dict[str, Row]:
    """The rows of ``view`` folded share by share, put together: a key found in several shares has its
    rows combined (:meth:`RecordView.combine`); otherwise a key belongs to one share only."""
    result: dict[str, Row] = {}
    combine = view.combine if isinstance(view, RecordView) and view.combines() else None
    for part in parts:
        if combine is None or not result:
            result.update(part)
            continue
        for key, row in part.items():
            held = result.get(key)
            result[key] = row if held is None else combine(held, row)
    return result


def matches(row: Row, where: Mapping[str, Any]) -> bool:
    """True when every field in ``where`` equals the row's value (a missing field counts as None)."""
    return all(row.get(field) == value for field, value in where.items())


def fold_records(
    view: RecordView,
    records: Iterable[StoredRecord],
    rows: Mapping[str, Row] | None = None,
    *,
    accept: Callable[[StoredRecord], bool] | None = None,
) -> dict[str, Row]:
    """Apply ``records`` in order to ``rows`` (default: empty) and return the new rows, as :func:`fold`.

    ``rows`` and the rows in it are left as they were: a row is copied before its first change.
    """
    result = dict(rows or {})
    apply_records(view, records, result, set(result), accept=accept)
    return result


def apply_records(
    view: RecordView,
    records: Iterable[StoredRecord],
    rows: dict[str, Row],
    borrowed: set[str],
    *,
    accept: Callable[[StoredRecord], bool] | None = None,
) -> None:
    """Apply ``records`` to ``rows`` in place. Rows whose keys are in ``borrowed`` belong to someone else:
    each is copied before its first change (and its key leaves ``borrowed``)."""
    by_originator = type(view).record_key is RecordView.record_key
    if not borrowed and accept is None and not by_originator:  # the common case of a rebuild, tighter
        view.evolve_page(records, rows)
        return
    topics = frozenset(view.topics())
    record_key, evolve = view.record_key, view.evolve_record
    for record in records:
        if record[3] not in topics or (accept is not None and not accept(record)):  # [3]: the topic
            continue
        key = record[1] if by_originator else record_key(record)  # [1]: the originator id
        row = rows.get(key)
        if borrowed and key in borrowed:
            borrowed.discard(key)
            if row is not None:
                row = dict(row)
        new = evolve(row, record)
        if new is None:
            rows.pop(key, None)
        else:
            rows[key] = new
