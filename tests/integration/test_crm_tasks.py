"""Tasks through the CRM on every store: each command, the interaction on the party, refusals that store
nothing, and reads."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from crmcore import (
    CRM,
    ConcurrentUpdateError,
    EffectiveTimeOutOfOrder,
    IllegalTransition,
    InvalidInput,
    OpportunityNotFound,
    PartyMerged,
    PartyNotFound,
    TaskNotFound,
    TaskPriority,
    TaskStatus,
)
from crmcore.aggregates.party import Party

DUE = datetime(2030, 3, 4, 9, 30, tzinfo=UTC)


def prospect(crm: CRM, name: str = "Ada") -> UUID:
    return crm.register_party(kind="person", name=name, stage="prospect", actor="u")


def plan(crm: CRM, **fields: Any) -> UUID:
    given: dict[str, Any] = {"kind": "call", "subject": "Call back", "assignees": ["ann"], "actor": "u",
                             "due_at": DUE}
    return crm.plan_task(**{**given, **fields})


def interactions(crm: CRM, party: UUID) -> list[Any]:
    return [e for e in crm.timeline(party) if e.event == Party.InteractionRecorded.__name__]


def test_a_planned_task_reads_back_with_every_field(crm: CRM) -> None:
    party = prospect(crm)
    opportunity = crm.open_opportunity(party, title="Deal", value="100", currency="EUR",
                                       expected_close=date(2030, 6, 30), owner="ann", actor="u")
    task = plan(crm, kind="Meeting", party_id=party, opportunity_id=opportunity, assignees=["ann", "bob"],
                duration_minutes=60, priority="high")
    view = crm.get_task(task)
    assert (view.kind, view.subject, view.assignees) == ("meeting", "Call back", ["ann", "bob"])
    assert (view.party_id, view.opportunity_id) == (party, opportunity)
    assert (view.due_at, view.duration_minutes, view.deadline) == (DUE, 60, None)
    assert (view.priority, view.status, view.version) == (TaskPriority.HIGH, TaskStatus.OPEN, 1)


def test_a_task_may_be_for_nobody_in_particular_with_a_deadline(crm: CRM) -> None:
    view = crm.get_task(plan(crm, kind="documentation", due_at=None, deadline="2030-03-08"))
    assert (view.party_id, view.opportunity_id, view.deadline, view.due_at) == (None, None, date(2030, 3, 8),
                                                                                None)


@pytest.mark.parametrize(("fields", "field"), [
    ({"kind": "visit"}, "kind"),
    ({"subject": ""}, "subject"),
    ({"assignees": []}, "assignees"),
    ({"assignees": "ann"}, "assignees"),
    ({"assignees": ["ann", "ANN"]}, "assignees"),
    ({"due_at": None}, "due_at"),
    ({"deadline": date(2030, 1, 1)}, "due_at"),
    ({"due_at": datetime(2030, 1, 1, 9)}, "due_at"),
    ({"duration_minutes": 0}, "duration_minutes"),
    ({"duration_minutes": "30"}, "duration_minutes"),
    ({"priority": "asap"}, "priority"),
    ({"party_id": "nope"}, "party_id"),
    ({"actor": " "}, "actor"),
    ({"effective_at": datetime.now(UTC) + timedelta(hours=1)}, "effective_at"),
])
def test_bad_planning_input_is_refused_naming_the_field_and_nothing_is_stored(
    crm: CRM, fields: dict[str, Any], field: str,
) -> None:
    before = crm.position
    with pytest.raises(InvalidInput) as raised:
        plan(crm, **fields)
    assert field in {str(e["loc"][0]) for e in raised.value.errors if e["loc"]}, raised.value.errors
    assert crm.position == before


def test_a_task_for_an_unknown_party_or_opportunity_is_refused(crm: CRM) -> None:
    before = crm.position
    with pytest.raises(PartyNotFound):
        plan(crm, party_id=uuid4())
    with pytest.raises(OpportunityNotFound):
        plan(crm, opportunity_id=uuid4())
    assert crm.position == before


def test_a_task_for_a_merged_party_is_refused_naming_its_survivor(crm: CRM) -> None:
    survivor, loser = prospect(crm), prospect(crm, "Ada L.")
    crm.merge(survivor, loser, actor="u", reason="duplicate")
    before = crm.position
    with pytest.raises(PartyMerged) as raised:
        plan(crm, party_id=loser)
    assert raised.value.survivor_id == survivor
    assert crm.position == before
    assert crm.get_task(plan(crm, party_id=crm.resolve(loser))).party_id == survivor


def test_configured_kinds_replace_the_default_ones(store_url: str) -> None:
    with CRM(store_url, task_kinds=("visit", "call"), interaction_kinds=("visit",)) as crm:
        party = prospect(crm)
        with pytest.raises(InvalidInput):
            plan(crm, kind="meeting")
        visit = plan(crm, kind="Visit", party_id=party)
        call = plan(crm, kind="call", party_id=party)
        crm.complete_task(visit, by="ann", actor="u")
        crm.complete_task(call, by="ann", actor="u")
        assert [e.data["task_id"] for e in interactions(crm, party)] == [visit]


def test_assigning_reassigning_rescheduling_and_completing_record_their_events(crm: CRM) -> None:
    task = plan(crm)
    assert crm.assign_task(task, assignees=["bob", "ann"], actor="u").assignees == ["ann", "bob"]
    assert crm.assign_task(task, assignees=["Bob"], actor="u").version == 2  # already there: nothing
    assert crm.reassign_task(task, assignees=["carl"], actor="u").assignees == ["carl"]
    moved = crm.reschedule_task(task, deadline=date(2030, 3, 9), actor="u")
    assert (moved.due_at, moved.deadline) == (None, date(2030, 3, 9))
    assert [(m.due_at, m.deadline) for m in moved.schedule_history] == [(DUE, None)]
    done = crm.complete_task(task, by="carl", time_spent_minutes=25, outcome="they agree", actor="u")
    assert (done.status, done.completed_by, done.time_spent_minutes) == (TaskStatus.COMPLETED, "carl", 25)
    assert done.completed_at is not None
    events = [e.event for e in crm.task_timeline(task)]
    assert events == ["Planned", "Assigned", "Reassigned", "Rescheduled", "Completed"]


def test_completing_a_call_records_one_interaction_on_the_party_in_the_same_transaction(crm: CRM) -> None:
    party = prospect(crm)
    task = plan(crm, party_id=party)
    before = crm.position
    changes: list[Any] = []
    crm.subscribe(changes.extend)
    done = crm.complete_task(task, by="ann", outcome="interested", actor="u")
    assert [(c.aggregate_type, c.event) for c in changes] == [
        ("Task", "Completed"), ("Party", "InteractionRecorded")]
    assert crm.position > before
    (entry,) = interactions(crm, party)
    assert entry.data == {"kind": "call", "task_id": task, "outcome": "interested"}
    assert entry.effective_at == done.completed_at
    assert crm.get_party(party).last_interaction_at == done.completed_at


@pytest.mark.parametrize("kind", ["email", "documentation"])
def test_completing_a_task_that_is_not_an_interaction_records_nothing_on_the_party(
    crm: CRM, kind: str,
) -> None:
    party = prospect(crm)
    version = crm.get_party(party).version
    crm.complete_task(plan(crm, kind=kind, party_id=party), by="ann", actor="u")
    assert crm.get_party(party).version == version
    assert crm.get_party(party).last_interaction_at is None


def test_a_completed_meeting_of_a_party_merged_since_is_recorded_on_the_survivor(crm: CRM) -> None:
    survivor, loser = prospect(crm), prospect(crm, "Ada L.")
    task = plan(crm, kind="meeting", party_id=loser)
    crm.merge(survivor, loser, actor="u", reason="duplicate")
    crm.complete_task(task, by="ann", actor="u")
    assert len(interactions(crm, survivor)) == 1
    assert crm.get_party(survivor).last_interaction_at is not None


def test_engaging_a_suspect_sets_its_last_interaction(crm: CRM) -> None:
    party = crm.register_party(kind="person", name="Ada", stage="suspect", actor="u")
    assert crm.get_party(party).last_interaction_at is None
    view = crm.engage(party, channel="web_form", actor="u")
    assert view.last_interaction_at == view.last_effective_at


def test_a_completion_back_dated_before_the_partys_last_event_is_recorded_and_the_latest_kept(
    crm: CRM,
) -> None:
    start = datetime.now(UTC) - timedelta(days=3)
    party = crm.register_party(kind="person", name="Ada", stage="prospect", actor="u", effective_at=start)
    early, late = (plan(crm, party_id=party, effective_at=start) for _ in range(2))
    crm.complete_task(late, by="ann", actor="u", effective_at=start + timedelta(days=2))
    crm.update_profile(party, changes={"sector": "retail"}, actor="u")  # a later event on the party
    crm.complete_task(early, by="ann", actor="u", effective_at=start + timedelta(days=1))
    assert len(interactions(crm, party)) == 2
    assert crm.get_party(party).last_interaction_at == start + timedelta(days=2)


def test_someone_not_assigned_completes_only_on_behalf(crm: CRM) -> None:
    task = plan(crm)
    before = crm.position
    with pytest.raises(IllegalTransition):
        crm.complete_task(task, by="boss", actor="u")
    assert crm.position == before
    view = crm.complete_task(task, by="boss", on_behalf=True, actor="u")
    assert (view.completed_by, view.on_behalf) == ("boss", True)


COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("assign_task", {"assignees": ["zed"]}),
    ("reassign_task", {"assignees": ["zed"]}),
    ("reschedule_task", {"deadline": date(2031, 1, 1)}),
    ("complete_task", {"by": "ann"}),
    ("cancel_task", {"reason": "not needed"}),
]


@pytest.mark.parametrize("closing", ["complete_task", "cancel_task"])
def test_a_closed_task_refuses_every_command_and_nothing_is_stored(crm: CRM, closing: str) -> None:
    party = prospect(crm)
    task = plan(crm, party_id=party)
    getattr(crm, closing)(task, actor="u", **dict(COMMANDS)[closing])
    before = crm.position
    for command, fields in COMMANDS:
        with pytest.raises(IllegalTransition):
            getattr(crm, command)(task, actor="u", **fields)
    assert crm.position == before


@pytest.mark.parametrize(("command", "fields", "field"), [
    ("assign_task", {"assignees": []}, "assignees"),
    ("reassign_task", {"assignees": []}, "assignees"),
    ("reassign_task", {"assignees": ["a", "A"]}, "assignees"),
    ("reschedule_task", {}, "due_at"),
    ("reschedule_task", {"due_at": DUE, "deadline": date(2030, 1, 1)}, "due_at"),
    ("reschedule_task", {"deadline": date(2030, 1, 1), "duration_minutes": 5}, "duration_minutes"),
    ("complete_task", {"by": "ann", "time_spent_minutes": -1}, "time_spent_minutes"),
    ("complete_task", {"by": "ann", "time_spent_minutes": 10_001}, "time_spent_minutes"),
    ("complete_task", {"by": "ann", "outcome": "x" * 2001}, "outcome"),
    ("complete_task", {"by": "ann", "on_behalf": "yes"}, "on_behalf"),
    ("cancel_task", {"reason": ""}, "reason"),
    ("cancel_task", {"reason": "x", "colour": "red"}, "colour"),
])
def test_bad_command_input_is_refused_naming_the_field_and_nothing_is_stored(
    crm: CRM, command: str, fields: dict[str, Any], field: str,
) -> None:
    party = prospect(crm)
    task = plan(crm, party_id=party)
    before = crm.position
    with pytest.raises(InvalidInput) as raised:
        getattr(crm, command)(task, actor="u", **fields)
    assert field in {str(e["loc"][0]) for e in raised.value.errors if e["loc"]}, raised.value.errors
    assert crm.position == before


def test_an_effective_time_before_the_tasks_previous_event_is_refused(crm: CRM) -> None:
    now = datetime.now(UTC)
    task = plan(crm, effective_at=now)
    before = crm.position
    for command, fields in COMMANDS:
        with pytest.raises(EffectiveTimeOutOfOrder):
            getattr(crm, command)(task, actor="u", effective_at=now - timedelta(seconds=1), **fields)
    assert crm.position == before


def test_an_unknown_task_is_not_found(crm: CRM) -> None:
    party = prospect(crm)
    for command, fields in COMMANDS:
        with pytest.raises(TaskNotFound):
            getattr(crm, command)(uuid4(), actor="u", **fields)
    with pytest.raises(TaskNotFound):
        crm.get_task(party)  # a party is not a task
    with pytest.raises(TaskNotFound):
        crm.task_timeline(uuid4())
    with pytest.raises(InvalidInput):
        crm.get_task("not an id")


def test_an_expected_version_that_moved_on_is_refused(crm: CRM) -> None:
    task = plan(crm)
    crm.assign_task(task, assignees=["bob"], actor="u")
    before = crm.position
    with pytest.raises(ConcurrentUpdateError):
        crm.cancel_task(task, reason="x", actor="u", expected_version=1)
    assert crm.position == before
    assert crm.cancel_task(task, reason="x", actor="u", expected_version=2).status is TaskStatus.CANCELLED


def test_a_past_version_reads_as_it_was(crm: CRM) -> None:
    task = plan(crm)
    crm.reassign_task(task, assignees=["bob"], actor="u")
    assert crm.get_task(task, version=1).assignees == ["ann"]
    assert crm.get_task(task).assignees == ["bob"]


def test_a_long_history_reads_the_same_through_a_snapshot(crm: CRM) -> None:
    task = plan(crm)
    for day in range(1, 105):
        crm.reschedule_task(task, due_at=DUE + timedelta(days=day), actor="u")
    view = crm.get_task(task)
    assert view.version == 105
    assert len(view.schedule_history) == 104
    assert crm.get_task(task, version=105) == view


def test_a_party_with_many_interactions_reads_the_same_through_a_snapshot(crm: CRM) -> None:
    party = prospect(crm)
    for _ in range(101):
        crm.complete_task(plan(crm, party_id=party), by="ann", actor="u")
    view = crm.get_party(party)
    assert view.version == 102
    assert view.last_interaction_at is not None
    assert len(interactions(crm, party)) == 101


# ---------------------------------------------------------------------- the agenda and the tasks view

WEDNESDAY = date(2030, 3, 6)


def subjects(items: list[Any]) -> list[str]:
    return [i.subject for i in items]


def test_the_agenda_holds_the_open_tasks_of_a_person_in_four_sorted_buckets(crm: CRM) -> None:
    at = datetime(2030, 3, 6, 8, tzinfo=UTC)
    plan(crm, subject="overdue", due_at=datetime(2030, 3, 5, 10, tzinfo=UTC))
    plan(crm, subject="by tonight", due_at=None, deadline=WEDNESDAY, priority="urgent")
    plan(crm, subject="b at eight", due_at=at)
    plan(crm, subject="a at eight", due_at=at)
    plan(crm, subject="z urgent at eight", due_at=at, priority="urgent", assignees=["bob", "Ann"])
    plan(crm, subject="sunday", due_at=None, deadline=date(2030, 3, 10))
    plan(crm, subject="next monday", due_at=datetime(2030, 3, 11, 7, tzinfo=UTC))
    plan(crm, subject="bob's", assignees=["bob"], due_at=at)
    crm.complete_task(plan(crm, subject="done", due_at=at), by="ann", actor="u")
    crm.cancel_task(plan(crm, subject="cancelled", due_at=at), reason="no", actor="u")
    agenda = crm.agenda("ann", on=WEDNESDAY)
    assert subjects(agenda.overdue) == ["overdue"]
    assert subjects(agenda.today) == ["z urgent at eight", "a at eight", "b at eight", "by tonight"]
    assert subjects(agenda.this_week) == ["sunday"]
    assert subjects(agenda.later) == ["next monday"]
    assert (agenda.open_count, agenda.on, agenda.timezone) == (7, WEDNESDAY, "UTC")
    assert agenda.today[0].due_on == WEDNESDAY
    assert subjects(crm.agenda("BOB", on=WEDNESDAY).today) == ["z urgent at eight", "bob's"]


def test_a_task_due_at_half_past_eleven_utc_is_tomorrow_in_rome(crm: CRM) -> None:
    plan(crm, subject="late call", due_at=datetime(2030, 3, 6, 23, 30, tzinfo=UTC))
    assert subjects(crm.agenda("ann", on=WEDNESDAY).today) == ["late call"]
    rome = crm.agenda("ann", on=WEDNESDAY, timezone="Europe/Rome")
    assert subjects(rome.this_week) == ["late call"]
    assert rome.this_week[0].due_on == date(2030, 3, 7)
    assert subjects(crm.agenda("ann", on=date(2030, 3, 7), timezone="Europe/Rome").today) == ["late call"]
    # a deadline is a day whatever the time zone
    plan(crm, subject="by friday", due_at=None, deadline=date(2030, 3, 8))
    assert crm.agenda("ann", on=WEDNESDAY, timezone="Pacific/Kiritimati").this_week[-1].due_on == date(
        2030, 3, 8)


def test_on_defaults_to_today_in_the_time_zone(crm: CRM) -> None:
    now = datetime.now(UTC)
    plan(crm, subject="now", due_at=now)
    for zone in ("UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"):
        agenda = crm.agenda("ann", timezone=zone)
        assert agenda.on in {now.astimezone(ZoneInfo(zone)).date()}
        assert subjects(agenda.today) == ["now"]


def test_rescheduling_and_reassigning_move_a_task_between_buckets_and_agendas(crm: CRM) -> None:
    task = plan(crm, subject="moving", due_at=datetime(2030, 3, 6, 9, tzinfo=UTC))
    crm.reschedule_task(task, due_at=None, deadline=date(2030, 3, 20), actor="u")
    assert subjects(crm.agenda("ann", on=WEDNESDAY).later) == ["moving"]
    assert crm.agenda("ann", on=WEDNESDAY).later[0].reschedules == 1
    crm.reassign_task(task, assignees=["bob"], actor="u")
    assert crm.agenda("ann", on=WEDNESDAY).open_count == 0
    assert subjects(crm.agenda("bob", on=WEDNESDAY).later) == ["moving"]


def test_the_agenda_as_of_a_past_moment_shows_what_was_open_then(crm: CRM) -> None:
    task = plan(crm, subject="was open", due_at=datetime(2030, 3, 6, 9, tzinfo=UTC))
    moment = datetime.now(UTC)
    crm.cancel_task(task, reason="no", actor="u", effective_at=moment + timedelta(microseconds=1))
    assert crm.agenda("ann", on=WEDNESDAY).open_count == 0
    then = crm.agenda("ann", on=WEDNESDAY, at=moment)
    assert subjects(then.today) == ["was open"]
    assert then.at == moment
    before_planning = crm.agenda("ann", on=WEDNESDAY, at=moment - timedelta(hours=1))
    assert before_planning.open_count == 0
    # as known then: a completion back-dated before the moment, but recorded after, is not known
    other = plan(crm, subject="late news", due_at=datetime(2030, 3, 6, 9, tzinfo=UTC),
                 effective_at=moment - timedelta(minutes=1))
    known = datetime.now(UTC)
    crm.complete_task(other, by="ann", actor="u")
    assert subjects(crm.agenda("ann", on=WEDNESDAY, at=known, known_at=known).today) == ["late news"]
    assert crm.agenda("ann", on=WEDNESDAY, at=datetime.now(UTC)).open_count == 0


def test_bad_agenda_input_is_refused(crm: CRM) -> None:
    for call in (
        lambda: crm.agenda(""),
        lambda: crm.agenda("ann", timezone="Mars/Olympus"),
        lambda: crm.agenda("ann", on=datetime.now(UTC)),  # type: ignore[arg-type]
        lambda: crm.agenda("ann", at=datetime(2030, 1, 1)),
        lambda: crm.agenda("ann", known_at=datetime.now(UTC)),
        lambda: crm.workload([" "]),
        lambda: crm.task_analysis(since=datetime(2030, 1, 1)),
    ):
        with pytest.raises(InvalidInput):
            call()


def test_the_workload_counts_open_tasks_per_person_and_their_planned_minutes(crm: CRM) -> None:
    plan(crm, due_at=datetime(2030, 3, 5, 9, tzinfo=UTC), duration_minutes=30)  # overdue
    plan(crm, due_at=datetime(2030, 3, 6, 9, tzinfo=UTC), duration_minutes=45, assignees=["ann", "bob"])
    plan(crm, due_at=None, deadline=date(2030, 3, 9))  # this week, no duration
    plan(crm, due_at=datetime(2030, 4, 1, 9, tzinfo=UTC), duration_minutes=60, assignees=["bob"])
    crm.cancel_task(plan(crm, due_at=datetime(2030, 3, 6, 9, tzinfo=UTC), duration_minutes=99), reason="x",
                    actor="u")
    load = crm.workload(on=WEDNESDAY)
    assert list(load.assignees) == ["ann", "bob"]
    ann, bob = load.assignees["ann"], load.assignees["bob"]
    assert (ann.overdue, ann.today, ann.this_week, ann.later, ann.open, ann.planned_minutes) == (
        1, 1, 1, 0, 3, 75)
    assert (bob.overdue, bob.today, bob.this_week, bob.later, bob.open, bob.planned_minutes) == (
        0, 1, 0, 1, 2, 105)
    team = crm.workload(["Bob", "carl"], on=WEDNESDAY)
    assert list(team.assignees) == ["Bob", "carl"]
    assert (team.assignees["Bob"].open, team.assignees["carl"].open) == (2, 0)


def test_the_task_analysis_compares_planned_and_completed_days_and_time_spent(crm: CRM) -> None:
    planned_at = datetime(2025, 1, 1, 9, tzinfo=UTC)
    done_at = datetime(2025, 1, 10, 12, tzinfo=UTC)

    def cancelled(**fields: Any) -> None:
        task = plan(crm, effective_at=planned_at, **fields)
        crm.cancel_task(task, reason="x", actor="u", effective_at=done_at)

    def complete(spent: int | None, **fields: Any) -> None:
        task = plan(crm, effective_at=planned_at, **fields)
        crm.complete_task(task, by="ann", actor="u", effective_at=done_at, time_spent_minutes=spent)

    complete(20, due_at=datetime(2025, 1, 10, 9, tzinfo=UTC))  # on time (same day)
    complete(40, due_at=None, deadline=date(2025, 1, 8), kind="meeting", assignees=["ann", "bob"])  # 2 late
    complete(None, due_at=None, deadline=date(2025, 1, 5))  # 5 days late
    complete(10, due_at=None, deadline=date(2025, 2, 1))  # early
    cancelled(assignees=["bob"])
    plan(crm, effective_at=planned_at)  # still open: not analysed
    analysis = crm.task_analysis()
    ann = analysis.assignees["ann"]
    assert (ann.completed, ann.on_time, ann.late, ann.cancelled) == (4, 2, 2, 0)
    assert (ann.mean_days_late, ann.median_days_late) == (3.5, 3.5)
    assert ann.time_spent_minutes == 70
    call, meeting = ann.by_kind["call"], ann.by_kind["meeting"]
    assert (call.completed, call.declared, call.total_minutes, call.mean_minutes) == (3, 2, 30, 15.0)
    assert (meeting.completed, meeting.total_minutes) == (1, 40)
    bob = analysis.assignees["bob"]
    assert (bob.completed, bob.late, bob.cancelled) == (1, 1, 1)
    assert list(crm.task_analysis(assignee="BOB").assignees) == ["bob"]
    assert crm.task_analysis(since=date(2025, 1, 11)).assignees == {}
    assert crm.task_analysis(until=done_at).assignees == {}
    # in Tokyo the completion falls on the same day; the due time 09:00 UTC is 18:00 there: on time
    assert crm.task_analysis(timezone="Asia/Tokyo").assignees["ann"].on_time == 2
    assert crm.task_analysis(at=done_at - timedelta(seconds=1)).assignees == {}


def test_the_tasks_view_rebuilt_from_zero_equals_the_one_kept_up_to_date(crm: CRM) -> None:
    task = plan(crm, party_id=prospect(crm))
    crm.assign_task(task, assignees=["bob"], actor="u")
    crm.reschedule_task(task, deadline=date(2030, 5, 1), actor="u")
    crm.complete_task(task, by="bob", time_spent_minutes=3, actor="u")
    crm.cancel_task(plan(crm), reason="x", actor="u")
    kept = sorted(crm.view_rows("tasks"), key=lambda r: str(r["id"]))
    assert len(kept) == 2
    crm.rebuild_view("tasks")
    assert sorted(crm.view_rows("tasks"), key=lambda r: str(r["id"])) == kept
    row = next(r for r in kept if r["id"] == str(task))
    assert (row["status"], row["completed_by"], row["reschedules"], row["assignees"]) == (
        "completed", "bob", 1, ["ann", "bob"])
