"""The ``Task`` aggregate: an activity to do - a call, a meeting, an e-mail, documentation - for people.

Public commands check the rules (``crmcore.policies.tasks``) and the effective time, then call a private
``@event`` method that only mutates state: those re-run on every replay and must never raise. A task has
either a due date-time (``due_at``, with an optional duration) or a deadline (a date); completed and
cancelled are final. Deadlines are stored as ISO date text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as _Snapshot

from crmcore._ids import new_uuid7
from crmcore.aggregates.party import _check_not_future, _next_effective_time
from crmcore.exceptions import InvalidInput
from crmcore.policies import tasks
from crmcore.policies.tasks import TaskPriority, TaskStatus
from crmcore.values import utc_now

__all__ = ["TASK_EVENTS", "Task"]


class Task(Aggregate):
    """An activity to do, for a party and/or an opportunity (or neither), in its assignees' agendas."""

    class Event(Aggregate.Event):
        """Every task event says who did it and when it took effect."""

        actor: str
        effective_at: datetime

    class Planned(Event, Aggregate.Created):
        kind: str
        subject: str
        party_id: UUID | None
        opportunity_id: UUID | None
        assignees: list[str]
        due_at: datetime | None
        duration_minutes: int | None
        deadline: str | None
        priority: str

    class Assigned(Event):
        assignees: list[str]

    class Reassigned(Event):
        assignees: list[str]
        previous: list[str]

    class Rescheduled(Event):
        due_at: datetime | None
        duration_minutes: int | None
        deadline: str | None
        previous: dict[str, Any]

    class Completed(Event):
        by: str
        on_behalf: bool
        time_spent_minutes: int | None
        outcome: str | None

    class Cancelled(Event):
        reason: str

    class Snapshot(_Snapshot):
        """A snapshot that gives back the enum types JSON turned into strings."""

        def mutate(self, _: None) -> Task:
            task = super().mutate(_)
            assert isinstance(task, Task)
            task.status = TaskStatus(task.status)
            task.priority = TaskPriority(task.priority)
            return task

    # ------------------------------------------------------------------ creation

    @staticmethod
    def create_id(**_: Any) -> UUID:
        """New tasks get time-ordered UUIDv7 ids."""
        return new_uuid7()

    @event(Planned)
    def __init__(
        self,
        *,
        kind: str,
        subject: str,
        party_id: UUID | None,
        opportunity_id: UUID | None,
        assignees: list[str],
        due_at: datetime | None,
        duration_minutes: int | None,
        deadline: str | None,
        priority: str,
        actor: str,
        effective_at: datetime,
    ) -> None:
        self.kind = kind
        self.subject = subject
        self.party_id = party_id
        self.opportunity_id = opportunity_id
        self.assignees = list(assignees)
        self.due_at = due_at
        self.duration_minutes = duration_minutes
        self.deadline = deadline
        self.priority = TaskPriority(priority)
        self.status = TaskStatus.OPEN
        self.schedule_history: list[dict[str, Any]] = []
        self.completed_by: str | None = None
        self.on_behalf = False
        self.time_spent_minutes: int | None = None
        self.outcome: str | None = None
        self.cancel_reason: str | None = None
        self.planned_at = effective_at
        self.closed_at: datetime | None = None
        self.last_effective_at = effective_at

    @classmethod
    def plan(
        cls,
        *,
        kind: str,
        subject: str,
        assignees: Sequence[str],
        actor: str,
        kinds: Sequence[str] = tasks.DEFAULT_TASK_KINDS,
        party_id: UUID | None = None,
        opportunity_id: UUID | None = None,
        due_at: datetime | None = None,
        duration_minutes: int | None = None,
        deadline: date | None = None,
        priority: TaskPriority | str = TaskPriority.NORMAL,
        effective_at: datetime | None = None,
    ) -> Task:
        """Plan a task of one of ``kinds`` for ``assignees``, due at ``due_at`` or by ``deadline``."""
        chosen = tasks.kind_named(kind, kinds)
        names = tasks.check_assignees(assignees)
        text = _subject(subject)
        tasks.check_schedule(due_at, duration_minutes, deadline)
        rank = _priority(priority)
        at = _check_not_future(effective_at or utc_now())
        return cls(
            kind=chosen, subject=text, party_id=party_id, opportunity_id=opportunity_id, assignees=names,
            due_at=_utc(due_at), duration_minutes=duration_minutes,
            deadline=deadline.isoformat() if deadline is not None else None, priority=rank.value,
            actor=actor, effective_at=at,
        )

    # ------------------------------------------------------------------ reading

    @property
    def deadline_date(self) -> date | None:
        """The deadline, if the task has one rather than a due date-time."""
        return date.fromisoformat(self.deadline) if self.deadline is not None else None

    def schedule(self) -> dict[str, Any]:
        """The schedule in force, as stored: ``due_at``, ``duration_minutes``, ``deadline``."""
        return {"due_at": self.due_at, "duration_minutes": self.duration_minutes, "deadline": self.deadline}

    def state(self) -> dict[str, Any]:
        """The task's state as plain data (for comparisons and read models)."""
        return {
            "id": self.id,
            "version": self.version,
            "kind": self.kind,
            "subject": self.subject,
            "party_id": self.party_id,
            "opportunity_id": self.opportunity_id,
            "assignees": list(self.assignees),
            "due_at": self.due_at,
            "duration_minutes": self.duration_minutes,
            "deadline": self.deadline_date,
            "priority": self.priority,
            "status": self.status,
            "schedule_history": [
                {"due_at": _datetime(h["due_at"]), "duration_minutes": h["duration_minutes"],
                 "deadline": date.fromisoformat(h["deadline"]) if h["deadline"] else None,
                 "effective_at": _datetime(h["effective_at"]), "actor": h["actor"]}
                for h in self.schedule_history
            ],
            "completed_by": self.completed_by,
            "on_behalf": self.on_behalf,
            "time_spent_minutes": self.time_spent_minutes,
            "outcome": self.outcome,
            "cancel_reason": self.cancel_reason,
            "planned_at": self.planned_at,
            "completed_at": self.closed_at if self.status is TaskStatus.COMPLETED else None,
            "cancelled_at": self.closed_at if self.status is TaskStatus.CANCELLED else None,
            "last_effective_at": self.last_effective_at,
        }

    # ------------------------------------------------------------------ commands

    def assign(self, *, assignees: Sequence[str], actor: str, effective_at: datetime | None = None) -> bool:
        """Add people to the task. Returns False (recording nothing) when all of them are already on it."""
        tasks.check_can_change(self.id, self.status, "assign it")
        names = tasks.check_assignees(assignees)
        at = self._when(effective_at)
        present = {a.casefold() for a in self.assignees}
        added = [n for n in names if n.casefold() not in present]
        if not added:
            return False
        if len(self.assignees) + len(added) > tasks.MAX_ASSIGNEES:
            message = f"assignees: a task has at most {tasks.MAX_ASSIGNEES} people"
            raise InvalidInput(message, [{"loc": ("assignees",), "msg": message, "type": "too_long"}])
        self._assigned(assignees=added, actor=actor, effective_at=at)
        return True

    def reassign(self, *, assignees: Sequence[str], actor: str, effective_at: datetime | None = None) -> bool:
        """Replace the people on the task. Returns False for the same list (ignoring order and case)."""
        tasks.check_can_change(self.id, self.status, "reassign it")
        names = tasks.check_assignees(assignees)
        at = self._when(effective_at)
        if sorted(n.casefold() for n in names) == sorted(a.casefold() for a in self.assignees):
            return False
        self._reassigned(assignees=names, previous=list(self.assignees), actor=actor, effective_at=at)
        return True

    def reschedule(
        self,
        *,
        actor: str,
        due_at: datetime | None = None,
        duration_minutes: int | None = None,
        deadline: date | None = None,
        effective_at: datetime | None = None,
    ) -> bool:
        """Move the task to a new due date-time or deadline (switching between them is allowed); every move
        is kept. Returns False when the schedule is unchanged."""
        tasks.check_can_change(self.id, self.status, "reschedule it")
        tasks.check_schedule(due_at, duration_minutes, deadline)
        at = self._when(effective_at)
        moment, day = _utc(due_at), deadline.isoformat() if deadline is not None else None
        if (moment, duration_minutes, day) == (self.due_at, self.duration_minutes, self.deadline):
            return False
        previous = self.schedule()
        previous["due_at"] = previous["due_at"].isoformat() if previous["due_at"] is not None else None
        self._rescheduled(due_at=moment, duration_minutes=duration_minutes, deadline=day, previous=previous,
                          actor=actor, effective_at=at)
        return True

    def complete(
        self,
        *,
        by: str,
        actor: str,
        time_spent_minutes: int | None = None,
        outcome: str | None = None,
        on_behalf: bool = False,
        effective_at: datetime | None = None,
    ) -> None:
        """Declare the task done, by one of its people (or anyone ``on_behalf`` of them); final."""
        tasks.check_can_change(self.id, self.status, "complete it")
        tasks.check_completer(self.id, by, self.assignees, on_behalf)
        if time_spent_minutes is not None and (
            isinstance(time_spent_minutes, bool)
            or not 0 <= time_spent_minutes <= tasks.MAX_TIME_SPENT_MINUTES
        ):
            message = f"time_spent_minutes: 0 to {tasks.MAX_TIME_SPENT_MINUTES} minutes"
            raise InvalidInput(message, [{"loc": ("time_spent_minutes",), "msg": message, "type": "range"}])
        if outcome is not None:
            outcome = _text(outcome, "outcome", 2000)
        at = self._when(effective_at)
        self._completed(by=by, on_behalf=bool(on_behalf), time_spent_minutes=time_spent_minutes,
                        outcome=outcome, actor=actor, effective_at=at)

    def cancel(self, *, reason: str, actor: str, effective_at: datetime | None = None) -> None:
        """Cancel the task, with the reason; final."""
        tasks.check_can_change(self.id, self.status, "cancel it")
        reason = _text(reason, "reason", 500)
        at = self._when(effective_at)
        self._cancelled(reason=reason, actor=actor, effective_at=at)

    def _when(self, effective_at: datetime | None) -> datetime:
        return _next_effective_time(effective_at, self.last_effective_at, "task")

    # ------------------------------------------------------------------ mutators (never raise)

    @event(Assigned)
    def _assigned(self, assignees: list[str], actor: str, effective_at: datetime) -> None:
        self.assignees = [*self.assignees, *assignees]
        self.last_effective_at = effective_at

    @event(Reassigned)
    def _reassigned(
        self, assignees: list[str], previous: list[str], actor: str, effective_at: datetime,
    ) -> None:
        self.assignees = list(assignees)
        self.last_effective_at = effective_at

    @event(Rescheduled)
    def _rescheduled(
        self, due_at: datetime | None, duration_minutes: int | None, deadline: str | None,
        previous: dict[str, Any], actor: str, effective_at: datetime,
    ) -> None:
        self.schedule_history = [*self.schedule_history, {
            **previous, "effective_at": effective_at.isoformat(), "actor": actor,
        }]
        self.due_at, self.duration_minutes, self.deadline = due_at, duration_minutes, deadline
        self.last_effective_at = effective_at

    @event(Completed)
    def _completed(
        self, by: str, on_behalf: bool, time_spent_minutes: int | None, outcome: str | None, actor: str,
        effective_at: datetime,
    ) -> None:
        self.status = TaskStatus.COMPLETED
        self.completed_by = by
        self.on_behalf = on_behalf
        self.time_spent_minutes = time_spent_minutes
        self.outcome = outcome
        self.closed_at = effective_at
        self.last_effective_at = effective_at

    @event(Cancelled)
    def _cancelled(self, reason: str, actor: str, effective_at: datetime) -> None:
        self.status = TaskStatus.CANCELLED
        self.cancel_reason = reason
        self.closed_at = effective_at
        self.last_effective_at = effective_at


def _subject(subject: str) -> str:
    return _text(subject, "subject", 200)


def _text(value: str, field: str, longest: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not 1 <= len(text) <= longest:
        message = f"{field}: 1 to {longest} characters"
        raise InvalidInput(message, [{"loc": (field,), "msg": message, "type": "string_length"}])
    return text


def _priority(priority: TaskPriority | str) -> TaskPriority:
    try:
        return TaskPriority(priority)
    except ValueError:
        choices = ", ".join(p.value for p in TaskPriority)
        message = f"priority: one of {choices}, got {priority!r}"
        raise InvalidInput(message, [{"loc": ("priority",), "msg": message, "type": "enum"}]) from None


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC)


def _datetime(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


#: Every event class a task records (what a view reading whole tasks subscribes to).
TASK_EVENTS: tuple[type[Task.Event], ...] = (
    Task.Planned,
    Task.Assigned,
    Task.Reassigned,
    Task.Rescheduled,
    Task.Completed,
    Task.Cancelled,
)
