"""The ``Segment`` aggregate: saved criteria over parties, with the history of their definition.

A segment is defined with a name, an optional description and criteria (:mod:`crmcore.segments`, stored as
their canonical JSON); its criteria may change and it may be retired. Every event says who did it and when
it took effect, so the members of a segment at a past moment are computed with the criteria it had then.
The criteria are checked by the caller (``CRM.define_segment``) against the fields in force and the other
segments before the event is recorded; the aggregate keeps the rules that need only itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from crmcore._ids import new_uuid7
from crmcore.aggregates.party import _check_not_future, _next_effective_time
from crmcore.exceptions import IllegalTransition, InvalidInput
from crmcore.values import utc_now

__all__ = ["SEGMENT_EVENTS", "Segment"]

#: How long a segment's name and description may be.
NAME_MAX, DESCRIPTION_MAX = 100, 1000


class Segment(Aggregate):
    """Saved criteria over parties (see :mod:`crmcore.segments`)."""

    class Event(Aggregate.Event):
        """Every segment event says who did it and when it took effect."""

        actor: str
        effective_at: datetime

    class Defined(Event, Aggregate.Created):
        name: str
        description: str | None
        criteria: dict[str, Any]

    class CriteriaChanged(Event):
        criteria: dict[str, Any]
        previous: dict[str, Any]

    class Renamed(Event):
        name: str
        description: str | None

    class Retired(Event):
        reason: str

    @staticmethod
    def create_id(**_: Any) -> UUID:
        """Segments get time-ordered UUIDv7 ids."""
        return new_uuid7()

    @event(Defined)
    def __init__(
        self, *, name: str, description: str | None, criteria: dict[str, Any], actor: str,
        effective_at: datetime,
    ) -> None:
        self.name = name
        self.description = description
        self.criteria = dict(criteria)
        self.retired = False
        self.retired_reason: str | None = None
        self.last_effective_at = effective_at

    @classmethod
    def define(
        cls, *, name: str, criteria: dict[str, Any], actor: str, description: str | None = None,
        effective_at: datetime | None = None,
    ) -> Segment:
        """A new segment; ``criteria`` must already be checked and canonical."""
        return cls(name=_name(name), description=_description(description), criteria=dict(criteria),
                   actor=actor, effective_at=_check_not_future(effective_at or utc_now()))

    def change_criteria(
        self, criteria: dict[str, Any], *, actor: str, effective_at: datetime | None = None,
    ) -> bool:
        """Replace the criteria (checked and canonical); the same criteria record nothing (False)."""
        at = self._when(effective_at)
        if criteria == self.criteria:
            return False
        self._criteria_changed(criteria=dict(criteria), previous=dict(self.criteria), actor=actor,
                               effective_at=at)
        return True

    def rename(
        self, *, name: str, description: str | None = None, actor: str, effective_at: datetime | None = None,
    ) -> bool:
        """Change the name and description; the same ones record nothing (False)."""
        at = self._when(effective_at)
        new_name, new_description = _name(name), _description(description)
        if (new_name, new_description) == (self.name, self.description):
            return False
        self._renamed(name=new_name, description=new_description, actor=actor, effective_at=at)
        return True

    def retire(self, *, reason: str, actor: str, effective_at: datetime | None = None) -> None:
        """Retire the segment: it has no members from then on; its history stays readable."""
        at = self._when(effective_at)
        text = reason.strip() if isinstance(reason, str) else ""
        if not text or len(text) > 500:
            raise InvalidInput("reason: give 1 to 500 characters",
                               [{"loc": ("reason",), "msg": "empty or too long", "type": "string"}])
        self._retired(reason=text, actor=actor, effective_at=at)

    def state(self) -> dict[str, Any]:
        """The segment as plain data."""
        return {
            "id": self.id, "version": self.version, "name": self.name, "description": self.description,
            "criteria": dict(self.criteria), "retired": self.retired, "retired_reason": self.retired_reason,
            "defined_at": self.created_on, "last_effective_at": self.last_effective_at,
        }

    def _when(self, effective_at: datetime | None) -> datetime:
        if self.retired:
            raise IllegalTransition(f"segment {self.id} is retired")
        return _next_effective_time(effective_at, self.last_effective_at, "segment")

    @event(CriteriaChanged)
    def _criteria_changed(
        self, criteria: dict[str, Any], previous: dict[str, Any], actor: str, effective_at: datetime,
    ) -> None:
        self.criteria = dict(criteria)
        self.last_effective_at = effective_at

    @event(Renamed)
    def _renamed(self, name: str, description: str | None, actor: str, effective_at: datetime) -> None:
        self.name, self.description = name, description
        self.last_effective_at = effective_at

    @event(Retired)
    def _retired(self, reason: str, actor: str, effective_at: datetime) -> None:
        self.retired, self.retired_reason = True, reason
        self.last_effective_at = effective_at


#: The segment events, in the order of the class.
SEGMENT_EVENTS: tuple[type[Segment.Event], ...] = (
    Segment.Defined, Segment.CriteriaChanged, Segment.Renamed, Segment.Retired,
)


def _name(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > NAME_MAX:
        raise InvalidInput(f"name: give 1 to {NAME_MAX} characters",
                           [{"loc": ("name",), "msg": "empty or too long", "type": "string"}])
    return text


def _description(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > DESCRIPTION_MAX:
        raise InvalidInput(f"description: text of at most {DESCRIPTION_MAX} characters",
                           [{"loc": ("description",), "msg": "not text or too long", "type": "string"}])
    return value.strip() or None
