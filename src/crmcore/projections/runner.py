"""Keeping views up to date by pulling pages from the notification log (works on every store)."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification

from crmcore.projections.asof import events_effective_by, fold_at_moments, records_effective_by
from crmcore.projections.base import RecordView, Row, View, apply_records, combine_parts, fold
from crmcore.projections.parallel import FoldTask, SharedReplay, can_share
from crmcore.projections.records import RECORD_PAGE_SIZE, RecordReader
from crmcore.projections.storage import PositionMoved, ViewStorage

__all__ = ["ViewRunner", "read_events"]

#: Notifications read per page: large pages amortise the round trip and the commit.
PAGE_SIZE = 2000

#: Rows changed in memory before they and the position are committed: a rebuild writes each row about
#: once per batch instead of once per page.
ROW_BATCH = 100_000


def read_events(
    recorder: ApplicationRecorder,
    mapper: Mapper[Any],
    *,
    after: int = 0,
    topics: Sequence[str] = (),
    page_size: int = PAGE_SIZE,
    stop: int | None = None,
) -> Iterator[tuple[int, DomainEventProtocol[Any]]]:
    """Every stored event after position ``after`` (up to ``stop``), decoded, with its position."""
    position = after
    while True:
        page: Sequence[Notification] = recorder.select_notifications(
            start=position, limit=page_size, stop=stop, topics=topics, inclusive_of_start=False
        )
        if not page:
            return
        for notification in page:
            yield notification.id, mapper.to_domain_event(notification)
        position = page[-1].id
        if len(page) < page_size:
            return


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a replay allocates millions of short-lived, acyclic objects
    (it would otherwise walk every live object again and again); reference counting still frees them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class ViewRunner:
    """Catches views up with the log, committing rows and position together in large batches.

    Views folded from stored records (:class:`RecordView`) are read with a :class:`RecordReader`: no event
    object is built. Pages are folded in memory until about ``row_batch`` rows have changed, then those rows
    and the new position commit in one transaction; another process committing first only means reading
    again from its position.
    """

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[Any],
        storage: ViewStorage,
        views: Iterable[View],
        *,
        page_size: int = PAGE_SIZE,
        row_batch: int = ROW_BATCH,
        shared: SharedReplay | None = None,
    ) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.storage = storage
        self.views = {v.name: v for v in views}
        for view in self.views.values():
            if view.packed_rows:
                storage.pack_rows(view.name, view.packed_rows)
        self.page_size = page_size
        self.row_batch = row_batch
        self.reader = RecordReader(recorder, mapper)
        #: Folds record views keyed by aggregate on several processes for rebuilds and as-of reads.
        self.shared = shared if shared is not None and self.reader.can_share else None
        #: Per view, the stored position a catch-up started from and the log position it found nothing of
        #: the view's after: while the stored position stays, the next catch-up reads on from there rather
        #: than across every other event again (a view of rare events in a busy log).
        self._read_to: dict[str, tuple[int, int]] = {}

    def view(self, name: str) -> View:
        """The registered view called ``name``."""
        return self.views[name]

    def catch_up(self, name: str | None = None) -> int:
        """Apply every new event to the named view (default: all). Returns how many events were applied."""
        names = [name] if name is not None else list(self.views)
        return sum(self._catch_up(self.views[n]) for n in names)

    def rebuild(self, name: str) -> int:
        """Forget the view and build it again from the first event."""
        view = self.views[name]
        self.storage.reset(view.name, view.version)
        stop = self._share_up_to(view)
        if stop and self.shared is not None:
            parts = self._run_shared(view, FoldTask(), stop)
            rows = combine_parts(view, (part for _, part in parts))
            try:
                self.storage.commit_page(view.name, 0, stop, rows)
                applied = sum(count for count, _ in parts)
            except PositionMoved:
                applied = 0  # another process rebuilt it meanwhile: catch up from where it got to
            return int(applied) + self._catch_up(view)
        return self._catch_up(view)

    def fold_as_of(self, name: str, at: datetime, known_at: datetime | None = None) -> dict[str, Row]:
        """The view computed in memory from the events effective by ``at`` (and recorded by ``known_at``)."""
        view = self.views[name]
        stop = self._share_up_to(view)
        if stop and isinstance(view, RecordView):
            parts = self._run_shared(view, FoldTask(at=at, known_at=known_at), stop)
            return combine_parts(view, (part for _, part in parts))
        if isinstance(view, RecordView):
            rows: dict[str, Row] = {}
            accept = records_effective_by(at, known_at)
            with paused_gc():
                for page in self.reader.pages(view.topics()):
                    apply_records(view, page, rows, set(), accept=accept)
            return rows
        events = (e for _, e in read_events(self.recorder, self.mapper, topics=view.topics(),
                                             page_size=self.page_size))
        return fold(view, events, accept=events_effective_by(at, known_at))

    def fold_together_as_of(
        self, names: Sequence[str], at: datetime, known_at: datetime | None = None,
    ) -> dict[str, dict[str, Row]]:
        """Several views as of ``at`` (and ``known_at``), each as :meth:`fold_as_of` gives it; record views
        folded in this process are folded in one read of the log (views of the same events decode them
        once)."""
        together = [n for n in names if isinstance(self.views[n], RecordView)
                    and not self._share_up_to(self.views[n])]
        result = {n: self.fold_as_of(n, at, known_at) for n in names if n not in together}
        if together:
            views = [self.views[n] for n in together]
            topics = sorted({topic for view in views for topic in view.topics()})
            accept = records_effective_by(at, known_at)
            folded: dict[str, dict[str, Row]] = {n: {} for n in together}
            with paused_gc():
                for page in self.reader.pages(topics):
                    kept = [record for record in page if accept(record)]
                    for view in views:
                        assert isinstance(view, RecordView)
                        apply_records(view, kept, folded[view.name], set())
            result.update(folded)
        return {n: result[n] for n in names}

    def fold_at(
        self, name: str, moments: Sequence[datetime], *, as_known: bool = False,
    ) -> list[dict[str, Row]]:
        """The record view ``name`` as it stood just before each of ``moments`` (ascending), in one read.

        A row at a moment is folded from its events effective strictly before it (with ``as_known``, also
        recorded strictly before it).
        """
        view = self.views[name]
        if not isinstance(view, RecordView):
            raise TypeError(f"view {name!r} is not folded from records")
        stop = self._share_up_to(view)
        if stop:
            parts = self._run_shared(view, FoldTask(moments=tuple(moments), as_known=as_known), stop)
            return [combine_parts(view, (part[index] for part in parts)) for index in range(len(moments))]
        with paused_gc():
            return fold_at_moments(view, lambda: self.reader.pages(view.topics()), moments, as_known=as_known)

    def _share_up_to(self, view: View) -> int:
        """The position a shared fold of ``view`` reads up to (0: fold it in this process alone)."""
        if self.shared is None or not can_share(view):
            return 0
        stop = int(self.recorder.max_notification_id() or 0)
        return stop if stop >= self.shared.share_from else 0

    def _run_shared(self, view: View, task: FoldTask, stop: int) -> list[Any]:
        assert self.shared is not None
        assert isinstance(view, RecordView)
        with paused_gc():
            return self.shared.run(self.reader, view, task, stop)

    def _catch_up(self, view: View) -> int:
        with paused_gc():
            return self._catch_up_view(view)

    def _catch_up_view(self, view: View) -> int:
        applied = 0
        while True:
            start = self.storage.position(view.name, view.version)
            # Every event up to the log's last position now is committed (inserts take a lock and commit
            # in position order): once read to the end, none of the view's can appear at or below it.
            log_end = int(self.recorder.max_notification_id() or 0)
            held_from, read_to = self._read_to.get(view.name, (-1, 0))
            after = read_to if held_from == start and read_to > start else start
            rows: dict[str, Row] = {}
            touched: set[str] = set()
            borrowed: set[str] = set()
            end, count, more = start, 0, False
            key_of: Any = view.record_key if isinstance(view, RecordView) else view.key
            for last, items in self._pages(view, after):
                end, more = last, True
                if start:  # rows may be stored already: load those these events touch (from zero: none)
                    keys = set(map(key_of, items))
                    loaded = self.storage.load(view.name, keys - touched)
                    rows.update(loaded)
                    borrowed.update(loaded)
                    touched |= keys
                if isinstance(view, RecordView):
                    apply_records(view, items, rows, borrowed)
                else:
                    rows = fold(view, items, rows)
                count += len(items)
                if len(touched if start else rows) >= self.row_batch:
                    break  # commit these rows, then read on
            else:
                more = False  # read to the end
            if count == 0:
                self._read_to[view.name] = (start, max(log_end, after))
                return applied
            changes = {k: rows.get(k) for k in touched} if start else rows
            try:
                self.storage.commit_page(view.name, start, end, changes)
            except PositionMoved:
                continue  # another process applied these events first: read again from its position
            applied += count
            if not more:
                self._read_to[view.name] = (end, max(log_end, end))
                return applied

    def _pages(self, view: View, after: int) -> Iterator[tuple[int, list[Any]]]:
        """Pages after ``after`` to the end, as (last position, records or events); records are decoded
        and handed over a slice of a page at a time."""
        if isinstance(view, RecordView):
            size = max(self.page_size, RECORD_PAGE_SIZE)
            if view.skimmed_topics:
                pages = self.reader.skimmed_pages(view.topics(), view.skimmed_topics, after=after,
                                                  page_size=size, sliced=True)
            else:
                pages = self.reader.pages(view.topics(), after=after, page_size=size, sliced=True)
            for page in pages:
                yield page[-1].position, page
            return
        while True:
            notifications = self.recorder.select_notifications(
                start=after, limit=self.page_size, topics=view.topics(), inclusive_of_start=False
            )
            if not notifications:
                return
            after = notifications[-1].id
            events = [self.mapper.to_domain_event(n) for n in notifications]
            yield after, events
            if len(notifications) < self.page_size:
                return
