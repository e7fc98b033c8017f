"""A model-based state machine for the party lifecycle, driving a real :class:`crmcore.CRM`.

Every rule sends one command to a CRM over a real store and applies the same command to a trivial model
of plain records (:class:`LifecycleModel`), which decides on its own, from its own small transition table,
whether the command must be accepted, what it must record and what the party becomes. After every step
the invariants compare the two, and compare the CRM with itself: each party read now against the party
rebuilt from its events, the ``parties`` view kept up to date against the same view folded from zero.

Run it against a store of your choice::

    from crmcore.testing import lifecycle_machine

    TestLifecycleInMemory = lifecycle_machine(lambda: "memory:")

or subclass :class:`PartyLifecycleMachine` and override :meth:`~PartyLifecycleMachine.open_store` or
:meth:`~PartyLifecycleMachine.make_crm`. This module needs ``hypothesis`` (``pip install 'crmcore[test]'``).
"""

from __future__ import annotations

import unittest
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, suppress
from datetime import timedelta
from functools import partial
from typing import Any, ClassVar, Final, TypeVar
from uuid import UUID

import attrs
from eventsourcing.utils import get_topic
from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
)

from crmcore.aggregates.party import Party
from crmcore.application import CRM
from crmcore.exceptions import CrmError, IllegalTransition, InvalidInput
from crmcore.models import Change, PartyCounts, PartyView, Qualification
from crmcore.projections import PartiesView, Row, fold
from crmcore.stores import StoreKind, parse_store_url
from crmcore.testing import strategies as cst
from crmcore.testing.facts import assert_facts_agree
from crmcore.values import utc_now

__all__ = [
    "STATE_COMMANDS",
    "CrmMachine",
    "Expectation",
    "ExpectedCounts",
    "LifecycleModel",
    "PartyLifecycleMachine",
    "PartyRecord",
    "StoreUrlFactory",
    "events_from_changes",
    "lifecycle_machine",
    "same_value",
    "send_command",
]

#: Makes a store URL for one example: a URL, or a context manager yielding one and cleaning up after.
StoreUrlFactory = Callable[[], "str | AbstractContextManager[str]"]

# ================================================================================================ model
#
# The model's own reading of the domain brief; deliberately not crmcore.policies.

_QUALIFIED_STAGE: Final = {"person": "prospect", "organization": "target"}
_ENGAGEABLE: Final = frozenset({"suspect"})
_QUALIFIABLE: Final = frozenset({"lead"})
_DISQUALIFIABLE: Final = frozenset({"lead", "prospect", "target"})
_REOPENABLE: Final = frozenset({"disqualified"})
_CONVERTIBLE: Final = frozenset({"prospect", "target"})
_UNASSIGNABLE: Final = frozenset({"disqualified"})
#: What organization stages a person at a given stage may belong to.
_MAY_BELONG_TO: Final[Mapping[str, frozenset[str]]] = {
    "prospect": frozenset({"target", "customer"}),
    "customer": frozenset({"customer"}),
}
#: How far along the lifecycle each stage is; disqualified stands outside it.
_RANK: Final = {"suspect": 0, "lead": 1, "prospect": 2, "target": 2, "customer": 3}

#: Commands whose refusal depends only on the party's own state.
STATE_COMMANDS: Final = (
    "assign", "convert", "disqualify", "engage", "qualify", "reopen", "restore", "set_aside",
)


def same_value(a: Any, b: Any) -> bool:
    """Equality that also compares types, recursively: ``1``, ``1.0`` and ``True`` all differ."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@attrs.frozen(kw_only=True)
class PartyRecord:
    """What the model knows of one party: plain strings, ids and a profile dict (never mutated)."""

    id: UUID
    kind: str
    stage: str
    name: str
    version: int = 1
    organization_name: str | None = None
    contact_name: str | None = None
    channel: str | None = None
    owner: str | None = None
    organization_id: UUID | None = None
    profile: dict[str, Any] = attrs.field(factory=dict)
    set_aside: bool = False
    set_aside_reason: str | None = None
    disqualification_reason: str | None = None
    qualified_from: UUID | None = None
    custom_fields: dict[str, Any] = attrs.field(factory=dict)
    custom_field_versions: dict[str, int] = attrs.field(factory=dict)
    # Identity values and merges are exercised by crmcore.testing.merging; here they stay empty.
    given_name: str | None = None
    family_name: str | None = None
    emails: list[str] = attrs.field(factory=list)
    phones: list[str] = attrs.field(factory=list)
    birth_date: Any = None
    address: Any = None
    web_links: list[str] = attrs.field(factory=list)
    vat_number: str | None = None
    merged_into: UUID | None = None
    merged_from: list[UUID] = attrs.field(factory=list)
    #: consent per channel; the lifecycle rules never record any
    consent: dict[str, str] = attrs.field(factory=dict)

    def fields(self) -> dict[str, Any]:
        """The record as the fields of :class:`crmcore.PartyView` it predicts."""
        return attrs.asdict(self, recurse=False)


@attrs.frozen
class Expectation:
    """What the model expects a command to do.

    ``refusal`` says why the command must be refused (None: it must be accepted); ``records`` are the
    parties after it, changed or new; ``events`` are the events it must record, as
    ``(party id, version, event name)``.
    """

    refusal: str | None = None
    records: tuple[PartyRecord, ...] = ()
    events: tuple[tuple[UUID, int, str], ...] = ()

    @property
    def refused(self) -> bool:
        """True when the command must be refused."""
        return self.refusal is not None


@attrs.frozen
class ExpectedCounts:
    """The counts the ``parties`` view must give, with stages and kinds as plain strings."""

    total: int
    by_stage: dict[str, int]
    by_kind: dict[str, int]
    by_owner: dict[str, int]
    unassigned: int

    @classmethod
    def of(cls, counts: PartyCounts) -> ExpectedCounts:
        """The same shape, from what the CRM answered."""
        return cls(
            total=counts.total,
            by_stage={str(k): v for k, v in counts.by_stage.items()},
            by_kind={str(k): v for k, v in counts.by_kind.items()},
            by_owner=dict(counts.by_owner),
            unassigned=counts.unassigned,
        )


def _refused(reason: str) -> Expectation:
    return Expectation(refusal=reason)


def _changed(
    record: PartyRecord, *events: str, **changes: Any,
) -> tuple[PartyRecord, list[tuple[UUID, int, str]]]:
    new = attrs.evolve(record, version=record.version + len(events), **changes)
    return new, [(record.id, record.version + i + 1, name) for i, name in enumerate(events)]


def _one(record: PartyRecord, *events: str, **changes: Any) -> Expectation:
    new, recorded = _changed(record, *events, **changes)
    return Expectation(records=(new,), events=tuple(recorded))


def _text(value: str | None) -> str | None:
    return cst.normalised(value) if value is not None else None


@attrs.define
class LifecycleModel:
    """Parties as plain records, and what each command must do to them.

    Each ``expect_*`` method returns an :class:`Expectation` without changing the model; :meth:`apply`
    records an accepted one.
    """

    parties: dict[UUID, PartyRecord] = attrs.field(factory=dict)
    events: int = 0

    def apply(self, expectation: Expectation) -> None:
        """Take an accepted command's effect into the model."""
        if expectation.refused:
            raise ValueError(f"a refused command changes nothing: {expectation.refusal}")
        for record in expectation.records:
            self.parties[record.id] = record
        self.events += len(expectation.events)

    # ---------------------------------------------------------------------------- registration

    def expect_register(self, party_id: UUID, fields: Mapping[str, Any]) -> Expectation:
        """Registering a party with ``fields`` (as given to the CRM) under the id the CRM chose."""
        kind, stage = str(fields["kind"]), str(fields["stage"])
        if stage not in cst.REGISTRABLE_STAGES[kind]:
            return _refused(f"a {kind} is never registered as {stage}")
        if "organization_name" in fields and kind != "person":
            return _refused("only a person names an organization")
        if "contact_name" in fields and kind != "organization":
            return _refused("only an organization names a contact")
        profile = {k: v for k, v in (fields.get("profile") or {}).items() if v is not None}
        record = PartyRecord(
            id=party_id, kind=kind, stage=stage, name=cst.normalised(fields["name"]),
            organization_name=_text(fields.get("organization_name")),
            contact_name=_text(fields.get("contact_name")),
            channel=str(fields["channel"]) if fields.get("channel") else None,
            owner=fields.get("owner"), profile=profile,
        )
        return Expectation(records=(record,), events=((party_id, 1, "Registered"),))

    # ---------------------------------------------------------------------------- moves between stages

    def expect_engage(self, party_id: UUID, channel: str) -> Expectation:
        """A suspect's first interaction makes it a lead."""
        record = self.parties[party_id]
        if record.stage not in _ENGAGEABLE:
            return _refused(f"a {record.stage} does not engage")
        return _one(record, "Engaged", stage="lead", channel=str(channel))

    def qualify_refusal(self, lead_id: UUID, link_to: UUID | None = None) -> str | None:
        """Why qualifying ``lead_id`` (linking it to ``link_to``) must be refused, if it must."""
        lead = self.parties[lead_id]
        if lead.stage not in _QUALIFIABLE:
            return f"a {lead.stage} is not qualified"
        if link_to is not None:
            organization = self.parties[link_to]
            if lead.kind != "person":
                return "only a person lead is linked to an existing organization"
            if organization.kind != "organization":
                return "a person is linked to organizations only"
            if organization.stage not in _MAY_BELONG_TO["prospect"]:
                return f"a prospect cannot belong to a {organization.stage}"
        return None

    def qualify_counterpart(self, lead_id: UUID, link_to: UUID | None = None) -> tuple[str, str] | None:
        """The (kind, name) of the party that qualifying ``lead_id`` must create, if any."""
        lead = self.parties[lead_id]
        if link_to is None and lead.kind == "person" and lead.organization_name:
            return "organization", lead.organization_name
        if lead.kind == "organization" and lead.contact_name:
            return "person", lead.contact_name
        return None

    def expect_qualify(
        self, lead_id: UUID, link_to: UUID | None = None, counterpart_id: UUID | None = None,
    ) -> Expectation:
        """Qualifying a lead; ``counterpart_id`` is the id the CRM gave the party it created, if any."""
        refusal = self.qualify_refusal(lead_id, link_to)
        if refusal is not None:
            return _refused(refusal)
        lead = self.parties[lead_id]
        counterpart = self.qualify_counterpart(lead_id, link_to)
        stage = _QUALIFIED_STAGE[lead.kind]
        if link_to is not None:
            new_lead, events = _changed(lead, "Qualified", "Linked", stage=stage, organization_id=link_to)
            return Expectation(records=(new_lead,), events=tuple(events))
        if counterpart is None:
            return _one(lead, "Qualified", stage=stage)
        if counterpart_id is None:
            raise ValueError("qualifying this lead creates a counterpart: give its id")
        kind, name = counterpart
        if kind == "organization":
            new_lead, events = _changed(lead, "Qualified", "Linked", stage=stage,
                                        organization_id=counterpart_id)
            other = PartyRecord(id=counterpart_id, kind=kind, stage="target", name=name, owner=lead.owner,
                                qualified_from=lead_id)
            events.append((counterpart_id, 1, "Registered"))
        else:
            new_lead, events = _changed(lead, "Qualified", stage=stage)
            other = PartyRecord(id=counterpart_id, kind=kind, stage="prospect", name=name, owner=lead.owner,
                                qualified_from=lead_id, organization_id=lead_id, version=2)
            events += [(counterpart_id, 1, "Registered"), (counterpart_id, 2, "Linked")]
        return Expectation(records=(new_lead, other), events=tuple(events))

    def expect_disqualify(self, party_id: UUID, reason: str) -> Expectation:
        """A lead, prospect or target failing qualification: kept, with the reason."""
        record = self.parties[party_id]
        if record.stage not in _DISQUALIFIABLE:
            return _refused(f"a {record.stage} is not disqualified")
        return _one(record, "Disqualified", stage="disqualified", disqualification_reason=reason)

    def expect_reopen(self, party_id: UUID) -> Expectation:
        """A disqualified party becomes a lead again."""
        record = self.parties[party_id]
        if record.stage not in _REOPENABLE:
            return _refused(f"a {record.stage} is not re-opened")
        return _one(record, "Reopened", stage="lead", disqualification_reason=None)

    def expect_convert(self, party_id: UUID) -> Expectation:
        """A purchase makes a prospect or target a customer."""
        record = self.parties[party_id]
        if record.stage not in _CONVERTIBLE:
            return _refused(f"a {record.stage} is not converted")
        return _one(record, "Converted", stage="customer")

    # ---------------------------------------------------------------------------- changes within a stage

    def expect_assign(self, party_id: UUID, owner: str | None) -> Expectation:
        """Giving the party to a sales rep (or to nobody); nothing is recorded if it is already theirs."""
        record = self.parties[party_id]
        if record.stage in _UNASSIGNABLE:
            return _refused(f"a {record.stage} party is not assigned")
        if record.owner == owner:
            return Expectation()
        return _one(record, "Assigned", owner=owner)

    def expect_link(self, person_id: UUID, organization_id: UUID) -> Expectation:
        """Making a person belong to an organization; nothing is recorded if it already does."""
        person, organization = self.parties[person_id], self.parties[organization_id]
        if person.kind != "person" or organization.kind != "organization":
            return _refused("only a person is linked, and only to an organization")
        if organization.stage not in _MAY_BELONG_TO.get(person.stage, frozenset()):
            return _refused(f"a {person.stage} cannot belong to a {organization.stage}")
        if person.organization_id == organization_id:
            return Expectation()
        return _one(person, "Linked", organization_id=organization_id)

    def expect_update_profile(self, party_id: UUID, changes: Mapping[str, Any]) -> Expectation:
        """Setting and removing traits; only real changes are recorded (a value of another type is one)."""
        record = self.parties[party_id]
        effective = {
            k: v for k, v in changes.items()
            if (v is None and k in record.profile)
            or (v is not None and not same_value(record.profile.get(k), v))
        }
        if not effective:
            return Expectation()
        profile = dict(record.profile)
        for key, value in effective.items():
            if value is None:
                profile.pop(key, None)
            else:
                profile[key] = value
        return _one(record, "ProfileUpdated", profile=profile)

    def expect_bulk_update(self, rows: Iterable[Mapping[str, Any]]) -> tuple[Expectation, int]:
        """Rows of :meth:`crmcore.CRM.bulk_update` (one batch): each assigns (if it has an ``owner``) and
        updates the profile; any refused row refuses them all. Also returns how many parties change."""
        scratch = LifecycleModel(dict(self.parties), self.events)
        events: list[tuple[UUID, int, str]] = []
        for row in rows:
            steps: list[Callable[[], Expectation]] = []
            if "owner" in row:
                steps.append(partial(scratch.expect_assign, row["party_id"], row["owner"]))
            if row.get("profile"):
                steps.append(partial(scratch.expect_update_profile, row["party_id"], row["profile"]))
            for expect in steps:  # each on the state the previous one left
                step = expect()
                if step.refused:
                    return step, 0
                scratch.apply(step)
                events += step.events
        changed = {party_id for party_id, _, _ in events}
        records = tuple(scratch.parties[party_id] for party_id in sorted(changed))
        return Expectation(records=records, events=tuple(events)), len(changed)

    def expect_set_aside(self, party_id: UUID, reason: str) -> Expectation:
        """Setting a party aside, whatever its stage, unless it already is."""
        record = self.parties[party_id]
        if record.set_aside:
            return _refused("already set aside")
        return _one(record, "SetAside", set_aside=True, set_aside_reason=reason)

    def expect_restore(self, party_id: UUID) -> Expectation:
        """Bringing a set-aside party back."""
        record = self.parties[party_id]
        if not record.set_aside:
            return _refused("not set aside")
        return _one(record, "Restored", set_aside=False, set_aside_reason=None)

    def refuses(self, command: str, party_id: UUID) -> bool:
        """Whether ``command`` (one of :data:`STATE_COMMANDS`) must be refused for the party as it is."""
        record = self.parties[party_id]
        return {
            "assign": record.stage in _UNASSIGNABLE,
            "convert": record.stage not in _CONVERTIBLE,
            "disqualify": record.stage not in _DISQUALIFIABLE,
            "engage": record.stage not in _ENGAGEABLE,
            "qualify": record.stage not in _QUALIFIABLE,
            "reopen": record.stage not in _REOPENABLE,
            "restore": not record.set_aside,
            "set_aside": record.set_aside,
        }[command]

    # ---------------------------------------------------------------------------- reads

    def counts(self) -> ExpectedCounts:
        """What :meth:`crmcore.CRM.party_counts` must answer."""
        by_stage: dict[str, int] = {}
        by_kind: dict[str, int] = {}
        by_owner: dict[str, int] = {}
        for record in self.parties.values():
            by_stage[record.stage] = by_stage.get(record.stage, 0) + 1
            by_kind[record.kind] = by_kind.get(record.kind, 0) + 1
            if record.owner is not None:
                by_owner[record.owner] = by_owner.get(record.owner, 0) + 1
        unassigned = sum(1 for r in self.parties.values() if r.owner is None)
        return ExpectedCounts(len(self.parties), by_stage, by_kind, by_owner, unassigned)


# ================================================================================================ helpers

_PARTY_TOPIC = get_topic(Party)


def events_from_changes(changes: Iterable[Change]) -> Iterator[Any]:
    """The ``Party`` domain events behind committed :class:`crmcore.Change` records, in order.

    Lets a test fold a view (``crmcore.projections.fold``) from zero over everything the log holds, read
    through the public :meth:`crmcore.CRM.changes`.
    """
    for change in changes:
        if change.aggregate_type != "Party":
            continue
        event_class = getattr(Party, change.event)
        fields: dict[str, Any] = {
            "originator_id": change.aggregate_id, "originator_version": change.version,
            "timestamp": change.recorded_at, "actor": change.actor, "effective_at": change.effective_at,
            **change.data,
        }
        if issubclass(event_class, Party.Registered):
            fields["originator_topic"] = _PARTY_TOPIC
        yield event_class(**fields)


def _note(message: str) -> None:
    with suppress(InvalidArgument):  # steps replayed outside Hypothesis, as pinned regression tests do
        note(message)


def _rows_by_key(rows: Iterable[Row]) -> dict[str, Row]:
    return {str(row["id"]): row for row in rows}


def _view_fields(view: PartyView) -> dict[str, Any]:
    fields = view.model_dump(exclude={"registered_at", "last_effective_at", "last_interaction_at"})
    for name in ("kind", "stage", "channel"):
        fields[name] = str(fields[name]) if fields[name] is not None else None
    return fields


@st.composite
def _registrations_at_stages_the_kind_cannot_hold(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(cst.kinds())
    stage = draw(st.sampled_from([s for s in cst.ALL_STAGES if s not in cst.REGISTRABLE_STAGES[kind.value]]))
    return draw(cst.registrations(kind=kind)) | {"stage": stage}


@st.composite
def _registrations_naming_the_wrong_counterpart(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(cst.kinds())
    wrong = "contact_name" if kind.value == "person" else "organization_name"
    return draw(cst.registrations(kind=kind)) | {wrong: draw(cst.names())}


# ================================================================================================ machine

class PartyLifecycleMachine(RuleBasedStateMachine):
    """Drives a real :class:`crmcore.CRM` and a :class:`LifecycleModel` with the same commands.

    Party ids live in one bundle per stage and move along (``consumes``) as parties change stage; an id
    may linger in a stage it has left, which only makes a later rule send a command the model refuses.
    Override :meth:`open_store` (or set :attr:`store_url`) to choose the store, and :meth:`make_crm`
    to configure the CRM. On a store other processes can open (SQLite, PostgreSQL) a second CRM reads
    what the first wrote.
    """

    #: The store each example runs on, unless :meth:`open_store` says otherwise.
    store_url: ClassVar[str] = "memory:"

    suspects = Bundle("suspects")
    leads = Bundle("leads")
    qualified = Bundle("qualified")
    customers = Bundle("customers")
    disqualified = Bundle("disqualified")
    any_party = suspects | leads | qualified | customers | disqualified

    def __init__(self) -> None:
        super().__init__()
        self._resources = ExitStack()
        try:
            url = self.open_store(self._resources)
            self.crm: CRM = self._resources.enter_context(self.make_crm(url))
            self.replica: CRM | None = None
            if parse_store_url(url).kind is not StoreKind.MEMORY:
                self.replica = self._resources.enter_context(self.make_crm(url))
        except BaseException:
            self._resources.close()
            raise
        self.model = LifecycleModel()
        self._kinds: dict[UUID, str] = {}
        self._stages: dict[UUID, str] = {}
        self._may_go_back: set[UUID] = set()
        self._log: list[Change] = []  # every change read so far, in order
        self._rebuilt: dict[UUID, int] = {}  # the version at which each party was last rebuilt

    # ---------------------------------------------------------------------------- hooks

    def open_store(self, resources: ExitStack) -> str:
        """The store URL for this example; register any clean-up on ``resources``."""
        return self.store_url

    def make_crm(self, url: str) -> CRM:
        """A CRM over ``url`` (called once, and once more for a second reader on shared stores)."""
        return CRM(url)

    def teardown(self) -> None:
        """Close the CRMs and release the store."""
        self._resources.close()

    # ---------------------------------------------------------------------------- running commands

    def _expect_refusal(
        self, expectation: Expectation, party_ids: Iterable[UUID], call: Callable[[], Any],
        error: type[Exception] = IllegalTransition,
    ) -> None:
        _note(f"refused: {expectation.refusal}")
        position = self.crm.position
        versions = {p: self.crm.get_party(p).version for p in party_ids}
        try:
            result = call()
        except error:
            pass
        else:
            raise AssertionError(f"accepted ({result!r}), but the model refuses: {expectation.refusal}")
        assert self.crm.position == position, "a refused command recorded something"
        for party_id, version in versions.items():
            assert self.crm.get_party(party_id).version == version, "a refused command changed the party"

    def _check_recorded(self, position: int, expectation: Expectation) -> None:
        recorded = sorted((c.aggregate_id, c.version, c.event) for c in self.crm.changes(after=position))
        assert recorded == sorted(expectation.events), (recorded, expectation.events)

    def _accept(self, expectation: Expectation, call: Callable[[], Any]) -> Any:
        position = self.crm.position
        result = call()
        self._check_recorded(position, expectation)
        self.model.apply(expectation)
        if isinstance(result, PartyView):  # the live aggregate, as the command left it
            assert result == self.crm.get_party(result.id), "the live party differs from the stored one"
        return result

    def _command(self, expectation: Expectation, party_ids: Iterable[UUID], call: Callable[[], Any]) -> bool:
        """Run ``call``, expecting what the model expects; True if it was accepted."""
        if expectation.refused:
            self._expect_refusal(expectation, party_ids, call)
            return False
        self._accept(expectation, call)
        return True

    # ---------------------------------------------------------------------------- registration

    def _register(self, fields: dict[str, Any]) -> UUID:
        position = self.crm.position
        party_id = self.crm.register_party(**fields)
        expectation = self.model.expect_register(party_id, fields)
        assert not expectation.refused, f"accepted, but the model refuses: {expectation.refusal}"
        self._check_recorded(position, expectation)
        self.model.apply(expectation)
        self._kinds[party_id] = str(fields["kind"])
        return party_id

    @rule(target=suspects, fields=cst.registrations(stage="suspect"))
    def register_suspect(self, fields: dict[str, Any]) -> UUID:
        return self._register(fields)

    @rule(target=leads, fields=cst.registrations(stage="lead"))
    def register_lead(self, fields: dict[str, Any]) -> UUID:
        return self._register(fields)

    @rule(target=qualified, fields=cst.registrations(kind="person", stage="prospect")
          | cst.registrations(kind="organization", stage="target"))
    def register_prospect_or_target(self, fields: dict[str, Any]) -> UUID:
        return self._register(fields)

    @rule(target=customers, fields=cst.registrations(stage="customer"))
    def register_customer(self, fields: dict[str, Any]) -> UUID:
        return self._register(fields)

    def _register_in_bulk(self, rows: list[dict[str, Any]]) -> Any:
        position = self.crm.position
        ids = self.crm.bulk_register(rows)
        assert len(ids) == len(rows), "one id per row"
        assert len(set(ids) | set(self.model.parties)) == len(ids) + len(self.model.parties), "ids repeat"
        expected = [self.model.expect_register(i, row) for i, row in zip(ids, rows, strict=True)]
        together = Expectation(records=tuple(r for e in expected for r in e.records),
                               events=tuple(ev for e in expected for ev in e.events))
        self._check_recorded(position, together)
        self.model.apply(together)
        for party_id, row in zip(ids, rows, strict=True):
            self._kinds[party_id] = str(row["kind"])
        return multiple(*ids)

    @rule(target=suspects, rows=st.lists(cst.registrations(stage="suspect"), min_size=1, max_size=4))
    def register_suspects_in_bulk(self, rows: list[dict[str, Any]]) -> Any:
        return self._register_in_bulk(rows)

    @rule(target=leads, rows=st.lists(cst.registrations(stage="lead"), min_size=1, max_size=4))
    def register_leads_in_bulk(self, rows: list[dict[str, Any]]) -> Any:
        return self._register_in_bulk(rows)

    @rule(fields=_registrations_at_stages_the_kind_cannot_hold()
          | _registrations_naming_the_wrong_counterpart())
    def register_what_the_lifecycle_refuses(self, fields: dict[str, Any]) -> None:
        expectation = self.model.expect_register(UUID(int=0), fields)
        assert expectation.refused, "a refused registration was expected"
        kind, stage = str(fields["kind"]), str(fields["stage"])
        error = IllegalTransition if stage not in cst.REGISTRABLE_STAGES[kind] else InvalidInput
        self._expect_refusal(expectation, (), lambda: self.crm.register_party(**fields), error)

    # ---------------------------------------------------------------------------- moves between stages

    @rule(target=leads, party=consumes(suspects), channel=cst.channels(), actor=cst.actors())
    def engage(self, party: UUID, channel: Any, actor: str) -> Any:
        expectation = self.model.expect_engage(party, channel.value)
        accepted = self._command(expectation, [party],
                                 lambda: self.crm.engage(party, channel=channel, actor=actor))
        return multiple(party) if accepted else multiple()

    @rule(target=qualified, lead=consumes(leads), actor=cst.actors())
    def qualify(self, lead: UUID, actor: str) -> Any:
        return self._qualify(lead, None, actor)

    @rule(target=qualified, lead=leads, organization=qualified | customers, actor=cst.actors())
    def qualify_linking_to_an_existing_organization(self, lead: UUID, organization: UUID, actor: str) -> Any:
        return self._qualify(lead, organization, actor)

    @precondition(lambda self: bool(self._person_leads() and self._organizations_to_belong_to("prospect")))
    @rule(target=qualified, data=st.data(), actor=cst.actors())
    def qualify_a_person_lead_into_an_organization_it_may_belong_to(
        self, data: st.DataObject, actor: str,
    ) -> Any:
        lead = data.draw(st.sampled_from(self._person_leads()), label="lead")
        organization = data.draw(st.sampled_from(self._organizations_to_belong_to("prospect")),
                                 label="organization")
        return self._qualify(lead, organization, actor)

    def _person_leads(self) -> list[UUID]:
        return sorted(p.id for p in self.model.parties.values() if (p.kind, p.stage) == ("person", "lead"))

    def _organizations_to_belong_to(self, person_stage: str) -> list[UUID]:
        stages = _MAY_BELONG_TO.get(person_stage, frozenset())
        return sorted(
            p.id for p in self.model.parties.values() if p.kind == "organization" and p.stage in stages
        )

    def _qualify(self, lead: UUID, link_to: UUID | None, actor: str) -> Any:
        extra: dict[str, Any] = {"link_to": link_to} if link_to is not None else {}
        refusal = self.model.qualify_refusal(lead, link_to)
        if refusal is not None:
            self._expect_refusal(_refused(refusal), [lead],
                                 lambda: self.crm.qualify(lead, actor=actor, **extra))
            return multiple()
        counterpart = self.model.qualify_counterpart(lead, link_to)
        lead_kind = self.model.parties[lead].kind
        position = self.crm.position
        result: Qualification = self.crm.qualify(lead, actor=actor, **extra)
        counterpart_id: UUID | None = None
        if counterpart is not None:
            counterpart_id = result.target_id if counterpart[0] == "organization" else result.prospect_id
            assert counterpart_id is not None, result
            assert counterpart_id not in self.model.parties, result
        expectation = self.model.expect_qualify(lead, link_to, counterpart_id)
        self._check_recorded(position, expectation)
        self.model.apply(expectation)
        # The answer names the prospect and the target, and a lead naming both yields a linked pair.
        person = lead if lead_kind == "person" else counterpart_id
        organization = link_to or (lead if lead_kind == "organization" else counterpart_id)
        assert result.lead_id == lead, result
        assert str(result.stage) == _QUALIFIED_STAGE[lead_kind], result
        assert (result.prospect_id, result.target_id) == (person, organization), result
        if person is not None and organization is not None:
            linked = self.crm.get_party(person)
            assert linked.organization_id == organization, "the prospect does not belong to the target"
            assert str(linked.stage) == "prospect", linked
            assert str(self.crm.get_party(organization).kind) == "organization"
        if counterpart is not None and counterpart_id is not None:
            self._kinds[counterpart_id] = counterpart[0]
            return multiple(lead, counterpart_id)
        return multiple(lead)

    @rule(target=disqualified, party=consumes(leads), reason=cst.reasons())
    def disqualify_lead(self, party: UUID, reason: str) -> Any:
        return self._disqualify(party, reason)

    @rule(target=disqualified, party=consumes(qualified), reason=cst.reasons())
    def disqualify_prospect_or_target(self, party: UUID, reason: str) -> Any:
        return self._disqualify(party, reason)

    def _disqualify(self, party: UUID, reason: str) -> Any:
        expectation = self.model.expect_disqualify(party, reason)
        if self._command(expectation, [party], lambda: self.crm.disqualify(party, reason=reason, actor="qa")):
            self._may_go_back.add(party)
            return multiple(party)
        return multiple()

    @rule(target=leads, party=consumes(disqualified), reason=st.none() | cst.reasons())
    def reopen(self, party: UUID, reason: str | None) -> Any:
        expectation = self.model.expect_reopen(party)
        if self._command(expectation, [party], lambda: self.crm.reopen(party, reason=reason, actor="qa")):
            self._may_go_back.add(party)
            return multiple(party)
        return multiple()

    @rule(target=customers, party=consumes(qualified), reference=st.none() | cst.references())
    def convert(self, party: UUID, reference: str | None) -> Any:
        expectation = self.model.expect_convert(party)
        accepted = self._command(expectation, [party],
                                 lambda: self.crm.convert(party, reference=reference, actor="sales"))
        return multiple(party) if accepted else multiple()

    # ---------------------------------------------------------------------------- changes within a stage

    @rule(party=any_party, owner=st.none() | cst.owners())
    def assign(self, party: UUID, owner: str | None) -> None:
        expectation = self.model.expect_assign(party, owner)
        self._command(expectation, [party], lambda: self.crm.assign(party, owner=owner, actor="manager"))

    @rule(person=qualified | customers, organization=qualified | customers)
    def link(self, person: UUID, organization: UUID) -> None:
        expectation = self.model.expect_link(person, organization)
        self._command(expectation, [person, organization],
                      lambda: self.crm.link(person, organization_id=organization, actor="sales"))

    @precondition(lambda self: bool(self._linkable_pairs()))
    @rule(data=st.data())
    def link_a_person_to_an_organization_it_may_belong_to(self, data: st.DataObject) -> None:
        pair = data.draw(st.sampled_from(self._linkable_pairs()), label="person, organization")
        self.link(*pair)

    def _linkable_pairs(self) -> list[tuple[UUID, UUID]]:
        return [
            (person.id, organization)
            for person in sorted(self.model.parties.values(), key=lambda p: p.id)
            if person.kind == "person"
            for organization in self._organizations_to_belong_to(person.stage)
            if organization != person.organization_id
        ]

    @rule(party=any_party, changes=cst.profile_changes(typed=False))
    def update_profile(self, party: UUID, changes: dict[str, Any]) -> None:
        expectation = self.model.expect_update_profile(party, changes)
        self._command(expectation, [party],
                      lambda: self.crm.update_profile(party, changes=changes, actor="marketing"))

    @rule(rows=st.lists(st.fixed_dictionaries(
        {"party_id": any_party, "profile": cst.profile_changes(min_size=0, typed=False)},
        optional={"owner": st.none() | cst.owners()},
    ), min_size=1, max_size=4))
    def update_in_bulk(self, rows: list[dict[str, Any]]) -> None:
        position = self.crm.position
        expectation, changed = self.model.expect_bulk_update(rows)
        party_ids = {row["party_id"] for row in rows}
        rows = [{**row, "actor": "importer"} for row in rows]
        if expectation.refused:
            self._expect_refusal(expectation, party_ids, lambda: self.crm.bulk_update(rows))
            return
        assert self.crm.bulk_update(rows) == changed, "bulk_update counts the parties it changed"
        self._check_recorded(position, expectation)
        self.model.apply(expectation)

    @rule(party=any_party, beyond=st.integers(0, 2))
    def update_in_bulk_past_a_snapshot(self, party: UUID, beyond: int) -> None:
        """Enough profile changes in one batch to reach the next snapshot (every 100 events of a party)."""
        record = self.model.parties[party]
        visits = record.profile.get("visits")
        first = visits + 1 if type(visits) is int else 0
        count = 100 - record.version % 100 + beyond
        self.update_in_bulk([{"party_id": party, "profile": {"visits": first + i}} for i in range(count)])

    @rule(party=any_party, reason=cst.reasons())
    def set_aside(self, party: UUID, reason: str) -> None:
        expectation = self.model.expect_set_aside(party, reason)
        self._command(expectation, [party], lambda: self.crm.set_aside(party, reason=reason, actor="hygiene"))

    @rule(party=any_party, reason=st.none() | cst.reasons())
    def restore(self, party: UUID, reason: str | None) -> None:
        expectation = self.model.expect_restore(party)
        self._command(expectation, [party], lambda: self.crm.restore(party, reason=reason, actor="hygiene"))

    @precondition(lambda self: any(p.set_aside for p in self.model.parties.values()))
    @rule(data=st.data())
    def restore_a_party_set_aside(self, data: st.DataObject) -> None:
        aside = sorted(p.id for p in self.model.parties.values() if p.set_aside)
        self.restore(data.draw(st.sampled_from(aside), label="party"), None)

    # ---------------------------------------------------------------------------- commands the state refuses

    @rule(party=any_party, data=st.data())
    def command_the_party_state_does_not_allow(self, party: UUID, data: st.DataObject) -> None:
        # Drawn from the fixed list (not from the refused ones) so that a shrunk example stays stable.
        refused = partial(self.model.refuses, party_id=party)
        command = data.draw(st.sampled_from(STATE_COMMANDS).filter(refused), label="command")
        fields: dict[str, Any] = {"actor": "qa"}
        if command == "engage":
            fields["channel"] = data.draw(cst.channels(), label="channel")
        elif command in ("disqualify", "set_aside"):
            fields["reason"] = "refused on purpose"
        elif command == "assign":
            fields["owner"] = data.draw(st.none() | cst.owners(), label="owner")
        method = getattr(self.crm, command)
        self._expect_refusal(_refused(f"{command} is refused"), [party], lambda: method(party, **fields))

    # ---------------------------------------------------------------------------- views

    @rule()
    def rebuild_parties_view_from_zero(self) -> None:
        before = _rows_by_key(self.crm.view_rows("parties"))
        rebuilder = self.replica or self.crm
        rebuilder.rebuild_view("parties")
        assert _rows_by_key(rebuilder.view_rows("parties")) == before, "the rebuilt view differs"

    # ---------------------------------------------------------------------------- invariants

    @invariant()
    def parties_agree_with_the_model_and_their_history(self) -> None:
        far = utc_now() + timedelta(days=1)
        for party_id, record in self.model.parties.items():
            party = self.crm.get_party(party_id)
            stage, kind = str(party.stage), str(party.kind)
            # A party's kind never changes.
            assert self._kinds.setdefault(party_id, kind) == kind, f"{party_id} changed kind"
            # A prospect is always a person, a target always an organization.
            assert (stage, kind) not in {("prospect", "organization"), ("target", "person")}, party
            # Stages only move forward, except through disqualification and re-opening.
            before = self._stages.get(party_id, stage)
            if stage != before and party_id not in self._may_go_back:
                assert "disqualified" not in (before, stage), f"{party_id}: {before} -> {stage}"
                assert _RANK[stage] > _RANK[before], f"{party_id} moved back from {before} to {stage}"
            self._stages[party_id] = stage
            # What the model says.
            actual, expected = _view_fields(party), record.fields()
            assert same_value(actual, expected), {
                k: (actual[k], expected[k]) for k in expected if not same_value(actual[k], expected[k])
            }
            # The same party rebuilt from all its events, and read through another CRM (when it changed:
            # an unchanged party was compared with its model record above).
            if self._rebuilt.get(party_id) != party.version:
                assert party == self.crm.party_as_of(party_id, far), "rebuilding from the events differs"
                if self.replica is not None:
                    assert party == self.replica.get_party(party_id), "another reader sees a different party"
                self._rebuilt[party_id] = party.version
        self._may_go_back.clear()

    @invariant()
    def parties_view_agrees_with_a_fold_from_zero(self) -> None:
        # The log only grows: read what is new, then fold everything from an empty view.
        self._log += self.crm.changes(after=self._log[-1].position if self._log else 0)
        assert len(self._log) == self.model.events, (len(self._log), self.model.events)
        from_zero = fold(PartiesView(), events_from_changes(self._log))
        incremental = _rows_by_key(self.crm.view_rows("parties"))
        assert incremental == from_zero, "the parties view differs from the same fold from zero"
        for key, row in incremental.items():
            record = self.model.parties[UUID(key)]
            seen = (row["kind"], row["stage"], row["name"], row["owner"], row["set_aside"],
                    row["organization_id"])
            organization = str(record.organization_id) if record.organization_id else None
            assert seen == (record.kind, record.stage, record.name, record.owner, record.set_aside,
                            organization), (row, record)
        listed = {s.id for s in self.crm.parties()}
        assert listed == set(self.model.parties), "parties() lists other parties than the model has"
        expected = self.model.counts()
        counts = ExpectedCounts.of(self.crm.party_counts())
        assert counts == expected, (counts, expected)
        as_of = ExpectedCounts.of(self.crm.party_counts_as_of(utc_now() + timedelta(days=1)))
        assert as_of == expected, (as_of, expected)
        assert_facts_agree(self.crm)


def lifecycle_machine(
    store_url_factory: StoreUrlFactory,
    *,
    settings: settings | None = None,
    name: str = "PartyLifecycle",
) -> type[unittest.TestCase]:
    """A ``unittest.TestCase`` running :class:`PartyLifecycleMachine` on stores from ``store_url_factory``.

    The factory is called once per example and returns a URL, or a context manager that yields one and
    cleans up (deletes the file, drops the schema) when the example ends. Assign the result to a name
    starting with ``Test`` in a test module for pytest or unittest to collect it.
    """

    return machine_case(PartyLifecycleMachine, store_url_factory, settings=settings, name=name)


M = TypeVar("M", bound=Any)




class CrmMachine(RuleBasedStateMachine):
    """A state machine driving one :class:`CRM` over a store of its own, closed when the example ends.

    Override :meth:`open_store` to choose the store (``machine_case`` does, from a factory).
    """

    def __init__(self) -> None:
        super().__init__()
        self._resources = ExitStack()
        self.crm = self._resources.enter_context(CRM(self.open_store(self._resources)))

    def open_store(self, resources: ExitStack) -> str:
        """The store URL for this example (default: a fresh memory store)."""
        return "memory:"

    def teardown(self) -> None:
        self._resources.close()

def send_command(crm: CRM, target: UUID, command: str, fields: dict[str, Any], *, accepted: bool,
                 records: bool) -> None:
    """Send ``command`` to ``target`` as a machine step: a refused one must raise a crmcore error and store
    nothing; an accepted one must store an event exactly when ``records``."""
    before = crm.position
    note(f"{command}({target}, {fields}) expected {'accepted' if accepted else 'refused'}")
    if not accepted:
        try:
            getattr(crm, command)(target, actor="machine", **fields)
        except CrmError:
            pass
        else:
            raise AssertionError(f"{command} {fields} was accepted; the rules refuse it")
        assert crm.position == before, "a refused command stored something"
        return
    getattr(crm, command)(target, actor="machine", **fields)
    assert crm.position > before if records else crm.position == before, \
        f"{command} {fields}: expected {'an event' if records else 'no event'}"

def machine_case(
    machine: type[M], store_url_factory: StoreUrlFactory, *, settings: settings | None, name: str
) -> type[unittest.TestCase]:
    """A ``TestCase`` running ``machine`` (whose ``open_store`` it overrides) on stores from the factory."""

    class Machine(machine):  # type: ignore[valid-type, misc]
        def open_store(self, resources: ExitStack) -> str:
            made = store_url_factory()
            return made if isinstance(made, str) else resources.enter_context(made)

    Machine.__name__ = Machine.__qualname__ = f"{name}Machine"
    case: type[unittest.TestCase] = Machine.TestCase
    case.__name__ = case.__qualname__ = f"Test{name}"
    if settings is not None:
        case.settings = settings  # type: ignore[attr-defined]
    return case
