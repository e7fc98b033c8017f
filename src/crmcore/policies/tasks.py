"""Tasks and the agenda: kinds, priorities, statuses and the rules a task moves by (pure: no I/O).

The ``check_*`` functions return nothing (or the checked value) when a command is allowed and raise
:class:`~crmcore.exceptions.IllegalTransition` (a command the task's state does not allow) or
:class:`~crmcore.exceptions.InvalidInput` (a value that breaks the rules) when it is not, so the aggregate
can call them before it records anything. The agenda's buckets (:func:`bucket_of`) are pure date arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from uuid import UUID

from crmcore.exceptions import IllegalTransition, InvalidInput
from crmcore.policies.pipelines import closest

__all__ = [
    "DEFAULT_TASK_KINDS",
    "INTERACTION_KINDS",
    "MAX_ASSIGNEES",
    "AgendaBucket",
    "TaskPriority",
    "TaskStatus",
    "bucket_of",
    "check_assignees",
    "check_can_change",
    "check_completer",
    "check_schedule",
    "interaction_kinds_of",
    "kind_named",
    "priority_rank",
    "task_kinds_of",
]

#: The kinds of task a CRM knows unless configured otherwise (``CRM(task_kinds=...)``).
DEFAULT_TASK_KINDS: tuple[str, ...] = ("call", "meeting", "email", "documentation")
#: The kinds whose completion is an interaction with the task's party (``Party.InteractionRecorded``).
INTERACTION_KINDS: tuple[str, ...] = ("call", "meeting")
#: How many people one task may be assigned to.
MAX_ASSIGNEES = 50
#: The longest a timed task may last, in minutes (a day).
MAX_DURATION_MINUTES = 1440
#: The most time a completion may declare, in minutes.
MAX_TIME_SPENT_MINUTES = 10_000


class TaskStatus(StrEnum):
    """Whether a task is still to do, or was completed or cancelled (both final)."""

    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class TaskPriority(StrEnum):
    """How urgent a task is; the agenda lists urgent ones first among those due at the same time."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


_RANK = {TaskPriority.URGENT: 0, TaskPriority.HIGH: 1, TaskPriority.NORMAL: 2, TaskPriority.LOW: 3}


def priority_rank(priority: TaskPriority | str) -> int:
    """The sort rank of a priority: 0 for urgent, up to 3 for low."""
    return _RANK[TaskPriority(priority)]


class AgendaBucket(StrEnum):
    """Where an open task falls in its assignees' agendas, relative to a day."""

    OVERDUE = "overdue"
    TODAY = "today"
    THIS_WEEK = "this_week"
    LATER = "later"


def bucket_of(due_on: date, on: date) -> AgendaBucket:
    """The bucket of a task due on ``due_on`` seen on day ``on``: before it, that day, the rest of ``on``'s
    ISO week (to Sunday), or later."""
    if due_on < on:
        return AgendaBucket.OVERDUE
    if due_on == on:
        return AgendaBucket.TODAY
    if due_on <= on + timedelta(days=7 - on.isoweekday()):
        return AgendaBucket.THIS_WEEK
    return AgendaBucket.LATER


def task_kinds_of(kinds: Iterable[str]) -> tuple[str, ...]:
    """Configured task kinds, checked: one or more, each a non-empty name of up to 50 characters, unique
    ignoring case. Stored as given, without outer spaces."""
    given = list(kinds) if not isinstance(kinds, str) else [kinds]
    names = tuple(k.strip() for k in given if isinstance(k, str))
    if not names or len(names) != len(given) or not all(1 <= len(k) <= 50 for k in names):
        raise InvalidInput("task_kinds: give one or more names of 1 to 50 characters",
                           [{"loc": ("task_kinds",), "msg": "not names", "type": "value_error"}])
    if len({k.casefold() for k in names}) != len(names):
        raise InvalidInput("task_kinds: a kind is listed twice",
                           [{"loc": ("task_kinds",), "msg": "duplicate", "type": "value_error"}])
    return names


def interaction_kinds_of(kinds: Iterable[str] | None, task_kinds: Sequence[str]) -> tuple[str, ...]:
    """The configured kinds that are interactions. ``None``: those of :data:`INTERACTION_KINDS` among
    ``task_kinds``; a given list must name configured task kinds only (matched ignoring case)."""
    if kinds is None:
        return tuple(k for k in task_kinds if k.casefold() in INTERACTION_KINDS)
    given = [kinds] if isinstance(kinds, str) else list(kinds)
    return tuple(dict.fromkeys(kind_named(k, task_kinds, field="interaction_kinds") for k in given))


def kind_named(kind: str, kinds: Sequence[str], *, field: str = "kind") -> str:
    """The configured kind called ``kind`` (ignoring case and outer spaces); InvalidInput suggests the
    closest."""
    wanted = kind.strip().casefold() if isinstance(kind, str) else None
    for known in kinds:
        if known.casefold() == wanted:
            return known
    suggestion = closest(kind, kinds) if isinstance(kind, str) else None
    hint = f" (did you mean {suggestion!r}?)" if suggestion else f" (one of {', '.join(kinds)})"
    message = f"unknown task kind {kind!r}{hint}"
    error = InvalidInput(message, [{"loc": (field,), "msg": message, "type": "unknown_kind"}])
    error.suggestion = suggestion  # type: ignore[attr-defined]
    raise error


def check_assignees(assignees: Sequence[str], *, field: str = "assignees") -> list[str]:
    """One to 50 names, none empty, none twice (ignoring case); returns them without outer spaces."""
    names = [a.strip() if isinstance(a, str) else "" for a in assignees]
    if not names or len(names) > MAX_ASSIGNEES or not all(1 <= len(n) <= 200 for n in names):
        message = f"{field}: give 1 to {MAX_ASSIGNEES} names of 1 to 200 characters"
        raise InvalidInput(message, [{"loc": (field,), "msg": message, "type": "value_error"}])
    folded = [n.casefold() for n in names]
    if len(set(folded)) != len(folded):
        twice = next(n for n in names if folded.count(n.casefold()) > 1)
        message = f"{field}: {twice!r} is named twice"
        raise InvalidInput(message, [{"loc": (field,), "msg": message, "type": "duplicate"}])
    return names


def check_schedule(
    due_at: datetime | None, duration_minutes: int | None, deadline: date | None,
) -> None:
    """Either a due date-time (aware; with an optional duration of 1 to 1,440 minutes) or a deadline."""
    problems: list[tuple[str, str]] = []
    if (due_at is None) == (deadline is None):
        problems.append(("due_at", "give either due_at (a date-time) or deadline (a date), not both"))
    if due_at is not None and (due_at.tzinfo is None or due_at.utcoffset() is None):
        problems.append(("due_at", "due_at must be timezone-aware"))
    if duration_minutes is not None:
        if due_at is None:
            problems.append(("duration_minutes", "a duration goes with due_at, not with a deadline"))
        elif isinstance(duration_minutes, bool) or not 1 <= duration_minutes <= MAX_DURATION_MINUTES:
            problems.append(("duration_minutes", f"a duration is 1 to {MAX_DURATION_MINUTES} minutes"))
    if problems:
        raise InvalidInput("; ".join(m for _, m in problems),
                           [{"loc": (f,), "msg": m, "type": "value_error"} for f, m in problems])


def check_can_change(task_id: UUID, status: TaskStatus, action: str) -> None:
    """Only an open task can be assigned, reassigned, rescheduled, completed or cancelled."""
    if status is not TaskStatus.OPEN:
        raise IllegalTransition(f"task {task_id} is {status.value}: cannot {action}", stage=status.value)


def check_completer(task_id: UUID, by: str, assignees: Sequence[str], on_behalf: bool) -> None:
    """Who declares a task done is one of its assignees, or anyone declaring it ``on_behalf`` of them."""
    if not on_behalf and by.casefold() not in {a.casefold() for a in assignees}:
        raise IllegalTransition(
            f"task {task_id}: {by!r} is not assigned to it (declare it on_behalf=True)", stage="open")
