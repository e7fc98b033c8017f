"""Keeping views up to date by pulling pages from the notification log (works on every store)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification

from crmcore.projections.base import Row, View, fold
from crmcore.projections.storage import PositionMoved, ViewStorage

__all__ = ["ViewRunner", "read_events"]

#: Notifications read per page: large pages amortise the round trip and the commit.
PAGE_SIZE = 2000


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


class ViewRunner:
    """Catches views up with the log: each page's rows and position commit in one transaction."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[Any],
        storage: ViewStorage,
        views: Iterable[View],
        *,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.storage = storage
        self.views = {v.name: v for v in views}
        self.page_size = page_size

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
        return self._catch_up(view)

    def fold_as_of(self, name: str, accept: Callable[[DomainEventProtocol[Any]], bool]) -> dict[str, Row]:
        """The view computed in memory from the events ``accept`` keeps (e.g. effective before a moment)."""
        view = self.views[name]
        events = (e for _, e in read_events(self.recorder, self.mapper, topics=view.topics(),
                                             page_size=self.page_size))
        return fold(view, events, accept=accept)

    def _catch_up(self, view: View) -> int:
        applied = 0
        topics = view.topics()
        while True:
            position = self.storage.position(view.name, view.version)
            page = self.recorder.select_notifications(
                start=position, limit=self.page_size, topics=topics, inclusive_of_start=False
            )
            if not page:
                return applied
            events = [self.mapper.to_domain_event(n) for n in page]
            keys = {view.key(e) for e in events}
            current = self.storage.load(view.name, keys)
            changed = fold(view, events, current)
            changes: dict[str, Row | None] = {k: changed.get(k) for k in keys}
            try:
                self.storage.commit_page(view.name, position, page[-1].id, changes)
            except PositionMoved:
                continue  # another process applied this page first: read again from its position
            applied += len(events)
            if len(page) < self.page_size:
                return applied
