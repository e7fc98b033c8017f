"""``tasks``: one row per task, and the agenda, workload and task analysis computed from rows.

A row keeps times as UTC ISO text and the deadline as ISO date text, so it stays JSON-native in every view
storage. The day a timed task is due depends on the time zone it is seen from, so rows keep ``due_at`` and
the readers (:func:`agenda_of`, :func:`workload_of`, :func:`task_analysis_of`) compute the day on read. Each
reader is a pure function of rows: no store is touched.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from datetime import date, datetime, tzinfo
from typing import Any, ClassVar

from eventsourcing.utils import get_topic

from crmcore.aggregates.task import TASK_EVENTS, Task
from crmcore.models import (
    Agenda,
    AgendaItem,
    AssigneeAnalysis,
    KindTime,
    TaskAnalysis,
    Workload,
    WorkloadEntry,
)
from crmcore.policies.tasks import AgendaBucket, bucket_of, priority_rank
from crmcore.projections.asof import utc_text
from crmcore.projections.base import RecordView, Row
from crmcore.projections.records import StoredRecord

__all__ = ["TasksView", "agenda_of", "due_on", "task_analysis_of", "workload_of"]


class TasksView(RecordView):
    """Every task: kind, subject, party, opportunity, assignees, schedule, priority, status, the effective
    times it was planned, completed or cancelled, who completed it, the time spent and how many times it was
    rescheduled. Folded from stored records, keyed by task (rebuilds can be shared between processes)."""

    name: ClassVar[str] = "tasks"
    version: ClassVar[int] = 1
    event_classes: ClassVar[tuple[type[Any], ...]] = TASK_EVENTS

    def __init__(self) -> None:
        self._planned = get_topic(Task.Planned)
        self._assigned = get_topic(Task.Assigned)
        self._reassigned = get_topic(Task.Reassigned)
        self._rescheduled = get_topic(Task.Rescheduled)
        self._completed = get_topic(Task.Completed)
        self._cancelled = get_topic(Task.Cancelled)

    def evolve_record(self, row: Row | None, record: StoredRecord) -> Row | None:
        _, originator_id, _, topic, data = record
        at = utc_text(data["effective_at"])
        if topic == self._planned:
            return {
                "id": originator_id,
                "kind": data["kind"],
                "subject": data["subject"],
                "party_id": data["party_id"],
                "opportunity_id": data["opportunity_id"],
                "assignees": list(data["assignees"]),
                "due_at": _utc_or_none(data["due_at"]),
                "duration_minutes": data["duration_minutes"],
                "deadline": data["deadline"],
                "priority": data["priority"],
                "status": "open",
                "planned_at": at,
                "completed_at": None,
                "cancelled_at": None,
                "completed_by": None,
                "time_spent_minutes": None,
                "reschedules": 0,
                "last_event_at": at,
            }
        if row is None:
            return None
        if topic == self._assigned:
            row["assignees"] = [*row["assignees"], *data["assignees"]]
        elif topic == self._reassigned:
            row["assignees"] = list(data["assignees"])
        elif topic == self._rescheduled:
            row["due_at"] = _utc_or_none(data["due_at"])
            row["duration_minutes"], row["deadline"] = data["duration_minutes"], data["deadline"]
            row["reschedules"] = row["reschedules"] + 1
        elif topic == self._completed:
            row["status"], row["completed_at"] = "completed", at
            row["completed_by"], row["time_spent_minutes"] = data["by"], data["time_spent_minutes"]
        elif topic == self._cancelled:
            row["status"], row["cancelled_at"] = "cancelled", at
        row["last_event_at"] = max(row["last_event_at"], at)
        return row


def _utc_or_none(value: str | None) -> str | None:
    return None if value is None else utc_text(value)


def due_on(row: Row, zone: tzinfo) -> date:
    """The day a task's row is due, seen from ``zone``: its ``due_at``'s date there, or its deadline."""
    if row["due_at"] is not None:
        return datetime.fromisoformat(row["due_at"]).astimezone(zone).date()
    return date.fromisoformat(row["deadline"])


def _sort_key(row: Row, day: date) -> tuple[Any, ...]:
    # a deadline counts as the end of its day: after the tasks due at a time that day
    timed = row["due_at"] is not None
    return (day, 0 if timed else 1, row["due_at"] or "", priority_rank(row["priority"]),
            row["subject"].casefold(), row["id"])


def _holds(row: Row, name: str) -> bool:
    return name.casefold() in (a.casefold() for a in row["assignees"])


def agenda_of(
    rows: Iterable[Row], assignee: str, *, on: date, zone: tzinfo, timezone: str, at: datetime | None = None,
) -> Agenda:
    """``assignee``'s open tasks (names compared ignoring case) in the four buckets of day ``on``."""
    buckets: dict[AgendaBucket, list[tuple[tuple[Any, ...], AgendaItem]]] = {b: [] for b in AgendaBucket}
    for row in rows:
        if row["status"] != "open" or not _holds(row, assignee):
            continue
        day = due_on(row, zone)
        item = AgendaItem(
            id=row["id"], kind=row["kind"], subject=row["subject"], party_id=row["party_id"],
            opportunity_id=row["opportunity_id"], assignees=row["assignees"], due_at=row["due_at"],
            duration_minutes=row["duration_minutes"], deadline=row["deadline"], due_on=day,
            priority=row["priority"], reschedules=row["reschedules"], planned_at=row["planned_at"],
        )
        buckets[bucket_of(day, on)].append((_sort_key(row, day), item))
    ordered = {b.value: [item for _, item in sorted(entries, key=lambda e: e[0])]
               for b, entries in buckets.items()}
    return Agenda(assignee=assignee, on=on, timezone=timezone, at=at, **ordered)


def workload_of(
    rows: Iterable[Row], assignees: Sequence[str] | None, *, on: date, zone: tzinfo, timezone: str,
    at: datetime | None = None,
) -> Workload:
    """Per person, the open tasks by bucket and the minutes planned for them (timed tasks with a duration).

    ``assignees`` None: everyone with an open task (each under the spelling first met, in name order).
    """
    names: dict[str, str] = {}
    if assignees is not None:
        names = {a.casefold(): a for a in assignees}
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        if row["status"] != "open":
            continue
        bucket = bucket_of(due_on(row, zone), on).value
        for person in row["assignees"]:
            key = person.casefold()
            if assignees is None:
                names.setdefault(key, person)
            elif key not in names:
                continue
            entry = counts.setdefault(key, {b.value: 0 for b in AgendaBucket} | {"planned_minutes": 0})
            entry[bucket] += 1
            entry["planned_minutes"] += row["duration_minutes"] or 0
    entries: dict[str, WorkloadEntry] = {}
    for key, name in sorted(names.items(), key=lambda kv: kv[1].casefold()):
        c = counts.get(key, {b.value: 0 for b in AgendaBucket} | {"planned_minutes": 0})
        entries[name] = WorkloadEntry(
            assignee=name, overdue=c["overdue"], today=c["today"], this_week=c["this_week"], later=c["later"],
            open=sum(c[b.value] for b in AgendaBucket), planned_minutes=c["planned_minutes"],
        )
    return Workload(on=on, timezone=timezone, at=at, assignees=entries)


def task_analysis_of(
    rows: Iterable[Row], *, zone: tzinfo, timezone: str, since: datetime | None = None,
    until: datetime | None = None, assignee: str | None = None, at: datetime | None = None,
) -> TaskAnalysis:
    """Per person, the tasks completed or cancelled at or after ``since`` and before ``until``.

    A closed task counts for each person assigned to it when it closed. A completion is on time when its
    day (in ``zone``) is not after the day the task was due; lateness is counted in whole days, and its mean
    and median are over the late completions. Time spent sums what completions declared, per kind too.
    """
    start = utc_text(since) if since is not None else None
    end = utc_text(until) if until is not None else None
    people: dict[str, dict[str, Any]] = {}
    for row in rows:
        closed = row["completed_at"] or row["cancelled_at"]
        if closed is None or (start is not None and closed < start) or (end is not None and closed >= end):
            continue
        for person in row["assignees"]:
            if assignee is not None and person.casefold() != assignee.casefold():
                continue
            p = people.setdefault(person.casefold(), {
                "name": person, "completed": 0, "on_time": 0, "late_days": [], "spent": 0, "kinds": {},
                "cancelled": 0,
            })
            if row["status"] == "cancelled":
                p["cancelled"] += 1
                continue
            p["completed"] += 1
            done_on = datetime.fromisoformat(closed).astimezone(zone).date()
            late = (done_on - due_on(row, zone)).days
            if late > 0:
                p["late_days"].append(late)
            else:
                p["on_time"] += 1
            kind = p["kinds"].setdefault(row["kind"], [0, 0, 0])  # completed, declared, minutes
            kind[0] += 1
            if row["time_spent_minutes"] is not None:
                kind[1] += 1
                kind[2] += row["time_spent_minutes"]
                p["spent"] += row["time_spent_minutes"]
    result: dict[str, AssigneeAnalysis] = {}
    for p in sorted(people.values(), key=lambda p: p["name"].casefold()):
        late_days: list[int] = p["late_days"]
        result[p["name"]] = AssigneeAnalysis(
            assignee=p["name"], completed=p["completed"], on_time=p["on_time"], late=len(late_days),
            mean_days_late=round(statistics.fmean(late_days), 2) if late_days else None,
            median_days_late=float(statistics.median(late_days)) if late_days else None,
            time_spent_minutes=p["spent"],
            by_kind={k: KindTime(completed=v[0], declared=v[1], total_minutes=v[2],
                                 mean_minutes=round(v[2] / v[1], 2) if v[1] else None)
                     for k, v in sorted(p["kinds"].items())},
            cancelled=p["cancelled"],
        )
    return TaskAnalysis(since=since, until=until, timezone=timezone, at=at, assignees=result)
