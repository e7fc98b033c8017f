"""A model-based state machine over task commands, driving a real CRM.

Every rule sends one command, good or bad, to a :class:`crmcore.CRM` and to :class:`TaskModel`, a plain
record of what each task must hold under the rules of ``docs/tasks.md``. The model says whether the command
is refused and whether it records an event; the machine checks the CRM agrees, and that a refused command
stored nothing. After every step the invariants check:

- every task holds what the model says (assignees, schedule, status, version);
- the agenda of each person, seen from UTC and from Rome, holds exactly the model's open tasks of that
  person, each in the right bucket and in the right order;
- each party carries exactly one ``InteractionRecorded`` per completed call or meeting planned for it
  (recorded on the survivor when the party was merged before the completion);
- every few steps, the ``tasks`` view rebuilt from zero equals the one kept up to date.

Run it against a store of your choice::

    from crmcore.testing import task_machine

    TestTasksInMemory = task_machine(lambda: "memory:")
"""

from __future__ import annotations

import unittest
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, initialize, invariant, rule

from crmcore.aggregates.party import Party
from crmcore.exceptions import CrmError, PartyMerged
from crmcore.policies.tasks import DEFAULT_TASK_KINDS, INTERACTION_KINDS, bucket_of, priority_rank
from crmcore.projections.tasks import TasksView
from crmcore.testing.facts import assert_facts_agree
from crmcore.testing.lifecycle import CrmMachine, StoreUrlFactory, machine_case, send_command

__all__ = ["TaskMachine", "TaskModel", "TaskRecord", "task_machine"]

#: The day agendas are read on (a Wednesday), and the zones they are read from.
ON = date(2030, 3, 6)
ZONES = ("UTC", "Europe/Rome")
#: The people whose agendas are checked.
PEOPLE = ("ann", "bob", "carl")
#: How many steps pass between two checks that rebuild the ``tasks`` view from zero.
REBUILD_EVERY = 5
_MIDNIGHT = datetime(2030, 3, 6, tzinfo=UTC)

#: Names as a caller gives them: known people, another spelling of one, and a blank one.
names = st.lists(st.sampled_from(["ann", "bob", "carl", "Ann", " "]), max_size=3)
#: Kinds: the default ones, another spelling, and one no CRM knows.
kinds = st.sampled_from([*DEFAULT_TASK_KINDS, "Call", "visit"])
priorities = st.sampled_from(["low", "normal", "high", "urgent"])


@st.composite
def schedules(draw: st.DrawFn) -> dict[str, Any]:
    """A due time (some near midnight UTC, so the day differs in Rome), a deadline, both, or neither."""
    choice = draw(st.sampled_from(["due_at", "due_at", "deadline", "deadline", "both", "neither"]))
    due_at = _MIDNIGHT + timedelta(minutes=30 * draw(st.integers(-6 * 48, 12 * 48)))
    deadline = ON + timedelta(days=draw(st.integers(-5, 12)))
    given: dict[str, Any] = {}
    if choice in ("due_at", "both"):
        given["due_at"] = due_at
        if draw(st.booleans()):
            given["duration_minutes"] = draw(st.integers(1, 120))
    if choice in ("deadline", "both"):
        given["deadline"] = deadline
    return given


@dataclass
class TaskRecord:
    """What one task must hold."""

    kind: str
    party: UUID | None
    assignees: list[str]
    due_at: datetime | None
    deadline: date | None
    priority: str
    status: str = "open"
    version: int = 1

    def due_on(self, zone: str) -> date:
        if self.due_at is not None:
            return self.due_at.astimezone(ZoneInfo(zone)).date()
        assert self.deadline is not None
        return self.deadline

    def holds(self, person: str) -> bool:
        return person.casefold() in {a.casefold() for a in self.assignees}


@dataclass
class TaskModel:
    """The parties (whether merged, how many interactions each carries) and the tasks, as plain data."""

    merged_into: dict[UUID, UUID] = field(default_factory=dict)
    interactions: dict[UUID, int] = field(default_factory=dict)
    tasks: dict[UUID, TaskRecord] = field(default_factory=dict)

    def resolve(self, party: UUID) -> UUID:
        while party in self.merged_into:
            party = self.merged_into[party]
        return party

    @staticmethod
    def assignees(given: list[str]) -> list[str] | None:
        """The names as stored, or None when the list is refused (empty, blank, or a name twice)."""
        stored = [n.strip() for n in given]
        folded = [n.casefold() for n in stored]
        if not stored or not all(stored) or len(set(folded)) != len(folded):
            return None
        return stored

    @staticmethod
    def schedule(given: dict[str, Any]) -> tuple[datetime | None, date | None] | None:
        """The schedule as stored, or None when it is refused (both or neither)."""
        if ("due_at" in given) == ("deadline" in given):
            return None
        return given.get("due_at"), given.get("deadline")


class TaskMachine(CrmMachine):
    """Plans tasks for parties (some merged) and sends them every command, good and bad."""

    parties = Bundle("parties")
    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.model = TaskModel()
        self.steps = 0

    # ------------------------------------------------------------------ helpers

    def _send(self, task: UUID, accepted: bool, records: bool, command: str, **fields: Any) -> None:
        """Send ``command`` (see :func:`send_command`) and count the event it records in the model."""
        send_command(self.crm, task, command, fields, accepted=accepted, records=records)
        if accepted and records:
            self.model.tasks[task].version += 1

    def _open_one(self, task: UUID) -> TaskRecord | None:
        record = self.model.tasks.get(task)
        return record if record is not None and record.status == "open" else None

    # ------------------------------------------------------------------ parties

    @initialize(target=parties)
    def a_prospect(self) -> UUID:
        return self._register()

    @rule(target=parties)
    def register(self) -> UUID:
        return self._register()

    def _register(self) -> UUID:
        party = self.crm.register_party(kind="person", name="Party", stage="prospect", actor="machine")
        self.model.interactions[party] = 0
        return party

    @rule(survivor=parties, loser=parties)
    def merge(self, survivor: UUID, loser: UUID) -> None:
        m = self.model
        if survivor == loser or survivor in m.merged_into or loser in m.merged_into:
            return
        self.crm.merge(survivor, loser, actor="machine", reason="duplicate")
        m.merged_into[loser] = survivor

    # ------------------------------------------------------------------ tasks

    @initialize(target=tasks, party=parties)
    def a_task(self, party: UUID) -> UUID:
        return self._plan(party, "call", ["ann"], {"due_at": _MIDNIGHT}, "normal")

    @rule(target=tasks, party=st.none() | parties, kind=kinds, assignees=names, schedule=schedules(),
          priority=priorities)
    def plan(self, party: UUID | None, kind: str, assignees: list[str], schedule: dict[str, Any],
             priority: str) -> UUID:
        return self._plan(party, kind, assignees, schedule, priority)

    def _plan(self, party: UUID | None, kind: str, assignees: list[str], schedule: dict[str, Any],
              priority: str) -> UUID:
        m = self.model
        stored, when = m.assignees(assignees), m.schedule(schedule)
        known = kind.strip().casefold() in DEFAULT_TASK_KINDS
        refusal: type[Exception] | None = None
        if stored is None or when is None or not known:
            refusal = CrmError
        elif party is not None and party in m.merged_into:
            refusal = PartyMerged
        note(f"plan({party}, {kind}, {assignees}, {schedule}) expected "
             f"{'refused' if refusal else 'accepted'}")
        before = self.crm.position
        refused: CrmError | None = None
        try:
            task = self.crm.plan_task(kind=kind, subject="Task", assignees=assignees, party_id=party,
                                      priority=priority, actor="machine", **schedule)
        except CrmError as error:
            refused = error
        if refused is not None:
            assert refusal is not None, f"refused: {refused!r}"
            assert isinstance(refused, refusal), f"refused with {refused!r}, expected {refusal.__name__}"
            assert self.crm.position == before, "a refused plan stored something"
            return UUID(int=0)  # an id nothing has: every later command on it must be refused
        assert refusal is None, "a plan the rules refuse was accepted"
        assert stored is not None
        assert when is not None
        m.tasks[task] = TaskRecord(kind=kind.strip().casefold(), party=party, assignees=stored,
                                   due_at=when[0], deadline=when[1], priority=priority)
        return task

    @rule(task=tasks, assignees=names)
    def assign(self, task: UUID, assignees: list[str]) -> None:
        record, stored = self._open_one(task), self.model.assignees(assignees)
        if record is None or stored is None:
            return self._send(task, False, False, "assign_task", assignees=assignees)
        added = [n for n in stored if not record.holds(n)]
        self._send(task, True, bool(added), "assign_task", assignees=assignees)
        record.assignees = [*record.assignees, *added]
        return None

    @rule(task=tasks, assignees=names)
    def reassign(self, task: UUID, assignees: list[str]) -> None:
        record, stored = self._open_one(task), self.model.assignees(assignees)
        if record is None or stored is None:
            return self._send(task, False, False, "reassign_task", assignees=assignees)
        same = sorted(n.casefold() for n in stored) == sorted(a.casefold() for a in record.assignees)
        self._send(task, True, not same, "reassign_task", assignees=assignees)
        if not same:
            record.assignees = stored
        return None

    @rule(task=tasks, schedule=schedules())
    def reschedule(self, task: UUID, schedule: dict[str, Any]) -> None:
        record, when = self._open_one(task), self.model.schedule(schedule)
        if record is None or when is None:
            return self._send(task, False, False, "reschedule_task", **schedule)
        view = self.crm.get_task(task)
        changed = (when[0], schedule.get("duration_minutes"), when[1]) != (
            view.due_at, view.duration_minutes, view.deadline)
        self._send(task, True, changed, "reschedule_task", **schedule)
        record.due_at, record.deadline = when
        return None

    @rule(task=tasks, by=st.sampled_from(["ann", "BOB", "boss"]), on_behalf=st.booleans(),
          minutes=st.none() | st.integers(-1, 30))
    def complete(self, task: UUID, by: str, on_behalf: bool, minutes: int | None) -> None:
        record = self._open_one(task)
        refused = minutes is not None and minutes < 0
        if record is None or (not on_behalf and not record.holds(by)) or refused:
            return self._send(task, False, False, "complete_task", by=by, on_behalf=on_behalf,
                              time_spent_minutes=minutes)
        self._send(task, True, True, "complete_task", by=by, on_behalf=on_behalf, time_spent_minutes=minutes)
        record.status = "completed"
        if record.party is not None and record.kind in INTERACTION_KINDS:
            survivor = self.model.resolve(record.party)
            self.model.interactions[survivor] += 1
        return None

    @rule(task=tasks)
    def cancel(self, task: UUID) -> None:
        record = self._open_one(task)
        if record is None:
            return self._send(task, False, False, "cancel_task", reason="not needed")
        self._send(task, True, True, "cancel_task", reason="not needed")
        record.status = "cancelled"
        return None

    # ------------------------------------------------------------------ invariants

    @invariant()
    def every_task_holds_what_the_model_says(self) -> None:
        for task, record in self.model.tasks.items():
            view = self.crm.get_task(task)
            assert view.version == record.version, (view.version, record.version)
            assert (view.status.value, view.assignees, view.kind) == (
                record.status, record.assignees, record.kind), view
            assert (view.due_at, view.deadline) == (record.due_at, record.deadline), view

    @invariant()
    def each_agenda_holds_exactly_the_open_tasks_of_its_person_in_the_right_bucket(self) -> None:
        for zone in ZONES:
            for person in PEOPLE:
                agenda = self.crm.agenda(person, on=ON, timezone=zone)
                expected: dict[str, list[tuple[Any, ...]]] = {
                    "overdue": [], "today": [], "this_week": [], "later": []}
                for task, record in self.model.tasks.items():
                    if record.status == "open" and record.holds(person):
                        day = record.due_on(zone)
                        key = (day, record.due_at is None, record.due_at or _MIDNIGHT,
                               priority_rank(record.priority), str(task))
                        expected[bucket_of(day, ON).value].append((key, task))
                for bucket, entries in expected.items():
                    wanted = [task for _, task in sorted(entries)]
                    got = [item.id for item in getattr(agenda, bucket)]
                    assert got == wanted, f"{person}'s {bucket} in {zone}: {got} != {wanted}"

    @invariant()
    def each_completed_call_or_meeting_added_exactly_one_interaction_to_its_party(self) -> None:
        for party, count in self.model.interactions.items():
            recorded = [e for e in self.crm.timeline(party) if e.event == Party.InteractionRecorded.__name__]
            assert len(recorded) == count, f"party {party}: {len(recorded)} interactions, expected {count}"
            last = self.crm.get_party(party).last_interaction_at
            assert (last is None) == (count == 0) or party in self.model.merged_into
        assert_facts_agree(self.crm)

    @invariant()
    def the_tasks_view_rebuilt_from_zero_equals_the_one_kept_up_to_date(self) -> None:
        self.steps += 1
        if self.steps % REBUILD_EVERY:
            return
        kept = sorted(self.crm.view_rows(TasksView.name), key=lambda r: str(r["id"]))
        self.crm.rebuild_view(TasksView.name)
        rebuilt = sorted(self.crm.view_rows(TasksView.name), key=lambda r: str(r["id"]))
        assert rebuilt == kept, "the tasks view rebuilt from zero differs from the one kept up to date"


def task_machine(
    store_url_factory: StoreUrlFactory, *, settings: settings | None = None, name: str = "Tasks",
) -> type[unittest.TestCase]:
    """A ``unittest.TestCase`` running :class:`TaskMachine` on stores from ``store_url_factory``.

    The factory is called once per example and returns a URL, or a context manager yielding one and
    cleaning up afterwards.
    """
    return machine_case(TaskMachine, store_url_factory, settings=settings, name=name)
