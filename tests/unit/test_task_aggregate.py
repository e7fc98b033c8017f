"""The Task aggregate on its own: the events its commands record and the rules they enforce."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from crmcore import EffectiveTimeOutOfOrder, IllegalTransition, InvalidInput
from crmcore.aggregates.task import Task
from crmcore.policies.tasks import (
    AgendaBucket,
    TaskPriority,
    TaskStatus,
    bucket_of,
    interaction_kinds_of,
    priority_rank,
    task_kinds_of,
)

DUE = datetime(2030, 3, 4, 9, 30, tzinfo=UTC)


def planned(**overrides: Any) -> Task:
    fields: dict[str, Any] = {"kind": "call", "subject": "Call back", "assignees": ["ann"], "actor": "u",
                              "due_at": DUE}
    return Task.plan(**{**fields, **overrides})


def events_of(task: Task) -> list[object]:
    return list(task.collect_events())


def settled(task: Task) -> Task:
    task.collect_events()
    return task


def test_planning_records_one_planned_event_with_every_field() -> None:
    party, opportunity = uuid4(), uuid4()
    task = planned(kind=" Meeting ", subject="  Demo ", assignees=["ann", "bob"], party_id=party,
                   opportunity_id=opportunity, duration_minutes=45, priority="urgent")
    (event,) = events_of(task)
    assert isinstance(event, Task.Planned)
    assert (event.kind, event.subject, event.assignees) == ("meeting", "Demo", ["ann", "bob"])
    assert (event.party_id, event.opportunity_id) == (party, opportunity)
    assert (event.due_at, event.duration_minutes, event.deadline) == (DUE, 45, None)
    assert (event.priority, event.actor) == ("urgent", "u")
    assert task.status is TaskStatus.OPEN
    assert task.priority is TaskPriority.URGENT


def test_planning_with_a_deadline_stores_the_date_and_no_time() -> None:
    task = planned(due_at=None, deadline=date(2030, 3, 5))
    (event,) = events_of(task)
    assert isinstance(event, Task.Planned)
    assert (event.due_at, event.deadline) == (None, "2030-03-05")
    assert task.deadline_date == date(2030, 3, 5)


def test_due_at_is_stored_in_utc() -> None:
    rome = datetime(2030, 3, 4, 10, 30, tzinfo=ZoneInfo("Europe/Rome"))
    assert planned(due_at=rome).due_at == DUE


def test_priority_defaults_to_normal() -> None:
    assert planned().priority is TaskPriority.NORMAL


@pytest.mark.parametrize(("overrides", "field"), [
    ({"kind": "visit"}, "kind"),
    ({"subject": "  "}, "subject"),
    ({"subject": "x" * 201}, "subject"),
    ({"assignees": []}, "assignees"),
    ({"assignees": ["ann", "Ann"]}, "assignees"),
    ({"assignees": [f"p{i}" for i in range(51)]}, "assignees"),
    ({"due_at": None}, "due_at"),
    ({"deadline": date(2030, 1, 1)}, "due_at"),
    ({"due_at": datetime(2030, 1, 1, 9)}, "due_at"),
    ({"duration_minutes": 0}, "duration_minutes"),
    ({"duration_minutes": 1441}, "duration_minutes"),
    ({"due_at": None, "deadline": date(2030, 1, 1), "duration_minutes": 30}, "duration_minutes"),
    ({"priority": "critical"}, "priority"),
    ({"effective_at": datetime.now(UTC) + timedelta(hours=1)}, "effective_at"),
    ({"effective_at": datetime(2030, 1, 1)}, "effective_at"),
])
def test_planning_against_the_rules_is_refused_naming_the_field(overrides: dict[str, Any], field: str,
                                                                ) -> None:
    with pytest.raises(InvalidInput) as raised:
        planned(**overrides)
    assert field in {e["loc"][0] for e in raised.value.errors}


def test_an_unknown_kind_suggests_the_closest_configured_one() -> None:
    with pytest.raises(InvalidInput) as raised:
        planned(kind="meating")
    assert raised.value.suggestion == "meeting"  # type: ignore[attr-defined]


def test_kinds_can_be_configured() -> None:
    assert planned(kind="visit", kinds=("visit", "call")).kind == "visit"


def test_assigning_adds_people_and_someone_already_there_records_nothing() -> None:
    task = settled(planned())
    assert task.assign(assignees=["ANN"], actor="u") is False
    assert events_of(task) == []
    assert task.assign(assignees=["ann", "bob"], actor="u") is True
    (event,) = events_of(task)
    assert isinstance(event, Task.Assigned)
    assert event.assignees == ["bob"]
    assert task.assignees == ["ann", "bob"]


def test_reassigning_replaces_the_list_and_keeps_the_previous_one() -> None:
    task = settled(planned(assignees=["ann", "bob"]))
    assert task.reassign(assignees=["Bob", "ANN"], actor="u") is False
    assert task.reassign(assignees=["carl"], actor="u") is True
    (event,) = events_of(task)
    assert isinstance(event, Task.Reassigned)
    assert (event.assignees, event.previous) == (["carl"], ["ann", "bob"])


def test_reassigning_to_nobody_is_refused() -> None:
    task = settled(planned())
    with pytest.raises(InvalidInput):
        task.reassign(assignees=[], actor="u")
    assert events_of(task) == []


def test_rescheduling_keeps_every_move_and_may_switch_to_a_deadline() -> None:
    task = settled(planned(duration_minutes=30))
    assert task.reschedule(due_at=DUE, duration_minutes=30, actor="u") is False
    assert task.reschedule(deadline=date(2030, 3, 8), actor="u") is True
    assert task.reschedule(due_at=DUE + timedelta(days=1), actor="u") is True
    first, second = events_of(task)
    assert isinstance(first, Task.Rescheduled)
    assert isinstance(second, Task.Rescheduled)
    assert first.previous == {"due_at": DUE.isoformat(), "duration_minutes": 30, "deadline": None}
    assert (first.due_at, first.deadline) == (None, "2030-03-08")
    assert second.previous == {"due_at": None, "duration_minutes": None, "deadline": "2030-03-08"}
    history = task.state()["schedule_history"]
    assert [h["deadline"] for h in history] == [None, date(2030, 3, 8)]


def test_rescheduling_with_both_or_neither_is_refused() -> None:
    task = settled(planned())
    for schedule in ({}, {"due_at": DUE, "deadline": date(2030, 1, 1)}):
        with pytest.raises(InvalidInput):
            task.reschedule(actor="u", **schedule)
    assert events_of(task) == []


def test_an_assignee_completes_the_task_for_everyone() -> None:
    task = settled(planned(assignees=["ann", "bob"]))
    task.complete(by="Bob", actor="u", time_spent_minutes=20, outcome=" agreed ")
    (event,) = events_of(task)
    assert isinstance(event, Task.Completed)
    assert (event.by, event.on_behalf) == ("Bob", False)
    assert (event.time_spent_minutes, event.outcome) == (20, "agreed")
    assert task.status is TaskStatus.COMPLETED
    assert task.state()["completed_at"] == event.effective_at


def test_someone_not_assigned_completes_only_on_behalf() -> None:
    task = settled(planned())
    with pytest.raises(IllegalTransition):
        task.complete(by="boss", actor="u")
    assert events_of(task) == []
    task.complete(by="boss", actor="u", on_behalf=True)
    assert task.completed_by == "boss"
    assert task.on_behalf


@pytest.mark.parametrize("fields", [
    {"time_spent_minutes": -1}, {"time_spent_minutes": 10_001}, {"time_spent_minutes": True},
    {"outcome": "x" * 2001}, {"outcome": " "},
])
def test_completing_with_bad_figures_is_refused(fields: dict[str, Any]) -> None:
    task = settled(planned())
    with pytest.raises(InvalidInput):
        task.complete(by="ann", actor="u", **fields)
    assert events_of(task) == []
    assert task.status is TaskStatus.OPEN


def test_cancelling_needs_a_reason() -> None:
    task = settled(planned())
    with pytest.raises(InvalidInput):
        task.cancel(reason="  ", actor="u")
    task.cancel(reason="customer away", actor="u")
    (event,) = events_of(task)
    assert isinstance(event, Task.Cancelled)
    assert event.reason == "customer away"
    assert task.state()["cancelled_at"] == event.effective_at


COMMANDS: list[Callable[..., object]] = [
    lambda t, **at: t.assign(assignees=["zed"], actor="u", **at),
    lambda t, **at: t.reassign(assignees=["zed"], actor="u", **at),
    lambda t, **at: t.reschedule(deadline=date(2031, 1, 1), actor="u", **at),
    lambda t, **at: t.complete(by="ann", actor="u", **at),
    lambda t, **at: t.cancel(reason="no", actor="u", **at),
]


@pytest.mark.parametrize("close", ["complete", "cancel"])
@pytest.mark.parametrize("command", range(len(COMMANDS)))
def test_a_completed_or_cancelled_task_is_final(close: str, command: int) -> None:
    task = planned()
    if close == "complete":
        task.complete(by="ann", actor="u")
    else:
        task.cancel(reason="no", actor="u")
    settled(task)
    with pytest.raises(IllegalTransition):
        COMMANDS[command](task)
    assert events_of(task) == []


@pytest.mark.parametrize("command", range(len(COMMANDS)))
def test_an_effective_time_before_the_previous_event_is_refused(command: int) -> None:
    now = datetime.now(UTC)
    task = settled(planned(effective_at=now))
    with pytest.raises(EffectiveTimeOutOfOrder):
        COMMANDS[command](task, effective_at=now - timedelta(minutes=1))
    assert events_of(task) == []


@pytest.mark.parametrize("command", range(len(COMMANDS)))
def test_an_effective_time_in_the_future_is_refused(command: int) -> None:
    task = settled(planned())
    with pytest.raises(InvalidInput):
        COMMANDS[command](task, effective_at=datetime.now(UTC) + timedelta(hours=1))
    assert events_of(task) == []


def test_a_replayed_task_equals_the_one_that_recorded_the_events() -> None:
    task = planned(assignees=["ann"], party_id=uuid4())
    task.assign(assignees=["bob"], actor="u")
    task.reschedule(deadline=date(2030, 4, 1), actor="u")
    task.complete(by="bob", actor="u", time_spent_minutes=5)
    replayed: Task | None = None
    for event in task.collect_events():
        replayed = event.mutate(replayed)  # type: ignore[assignment]
    assert replayed is not None
    assert replayed.state() == task.state()


# ---------------------------------------------------------------------- policies


@pytest.mark.parametrize(("due", "bucket"), [
    (date(2030, 3, 3), AgendaBucket.OVERDUE),
    (date(2030, 3, 4), AgendaBucket.TODAY),
    (date(2030, 3, 5), AgendaBucket.THIS_WEEK),
    (date(2030, 3, 10), AgendaBucket.THIS_WEEK),  # Sunday ends the ISO week
    (date(2030, 3, 11), AgendaBucket.LATER),
])
def test_buckets_follow_the_iso_week_of_the_day(due: date, bucket: AgendaBucket) -> None:
    assert date(2030, 3, 4).isoweekday() == 1
    assert bucket_of(due, date(2030, 3, 4)) is bucket


def test_on_a_sunday_nothing_is_due_this_week_but_today() -> None:
    assert bucket_of(date(2030, 3, 11), date(2030, 3, 10)) is AgendaBucket.LATER


def test_priorities_rank_urgent_first() -> None:
    assert sorted(TaskPriority, key=priority_rank) == [
        TaskPriority.URGENT, TaskPriority.HIGH, TaskPriority.NORMAL, TaskPriority.LOW]


def test_configured_kinds_are_checked() -> None:
    assert task_kinds_of([" visit ", "call"]) == ("visit", "call")
    for bad in ([], ["call", "Call"], [""], ["x" * 51]):
        with pytest.raises(InvalidInput):
            task_kinds_of(bad)
    assert interaction_kinds_of(None, ("visit", "Call")) == ("Call",)
    assert interaction_kinds_of(["visit"], ("visit", "call")) == ("visit",)
    with pytest.raises(InvalidInput):
        interaction_kinds_of(["meeting"], ("visit", "call"))
