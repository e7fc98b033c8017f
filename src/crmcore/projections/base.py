"""Views: pure folds over events into keyed rows, testable with no database."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.utils import get_topic

__all__ = ["Row", "View", "fold", "matches"]

#: A view's row: JSON-native data (str, int, bool, None, lists and dicts of those).
Row = dict[str, Any]


class View(ABC):
    """A read model defined as a pure fold.

    Subclasses name the view, give it a ``version`` (raise it when the fold changes: the view is rebuilt
    from zero), list the event classes they read, say which row an event touches and how it changes it.
    ``evolve`` must be pure: the same row and event always give the same result, and it must not
    mutate its inputs.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    event_classes: ClassVar[tuple[type[Any], ...]]

    @classmethod
    def topics(cls) -> list[str]:
        """The stored topics of the events this view reads (the store filters on them)."""
        return [get_topic(c) for c in cls.event_classes]

    @abstractmethod
    def key(self, event: DomainEventProtocol[Any]) -> str:
        """The key of the row ``event`` changes."""

    @abstractmethod
    def evolve(self, row: Row | None, event: DomainEventProtocol[Any]) -> Row | None:
        """The row after ``event`` (``None``: the row does not exist, or is deleted)."""


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


def matches(row: Row, where: Mapping[str, Any]) -> bool:
    """True when every field in ``where`` equals the row's value (a missing field counts as None)."""
    return all(row.get(field) == value for field, value in where.items())
