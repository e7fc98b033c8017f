"""A Hypothesis state machine for segments: parties change, deals open and close, parties merge and unmerge,
e-mail addresses bounce, are delivered to, move between parties and are decided again under other bounce
policies, segments are defined, changed and retired — and after every step each segment's members are
exactly the parties its criteria select when evaluated directly on the parties as they stand.

Invariants, checked after every step on a real :class:`~crmcore.CRM`:

- ``segment_members`` of every live segment equals the criteria evaluated on facts built from the parties
  themselves (``get_party``, ``delivery_history``), the suppression decisions recorded on each address
  (its ``AddressStatus`` aggregate) and the machine's own record of their opportunities — not from any view;
- replaying a segment's changes (entered / left) gives its members, and a party never enters twice without
  leaving in between;
- every few steps, each segment's members as of the moment after an earlier step, as known then, equal its
  members read live then (also without ``known_at`` when no bounce policy was re-applied since: a
  re-applied policy changes the past), and the ``segment_members`` projection rebuilt from zero equals the
  one kept up to date.

Use :func:`segment_machine` to get a ``unittest.TestCase`` running it on stores of your choice.
This module needs ``hypothesis`` (``pip install 'crmcore[test]'``).
"""

from __future__ import annotations

import unittest
from contextlib import suppress
from decimal import Decimal
from typing import Any, cast
from uuid import UUID, uuid4

from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, initialize, invariant, precondition, rule

from crmcore.exceptions import CrmError
from crmcore.policies.consent import BouncePolicy, deliverability_of, ledger_reports
from crmcore.policies.suppression import address_key_of
from crmcore.projections.asof import utc_text
from crmcore.projections.facts import opportunity_facts
from crmcore.projections.segments import memberships_of, referred_closure
from crmcore.segments import Criterion, Facts, parse_criteria, referenced_segments
from crmcore.testing.campaigns import running_campaign
from crmcore.testing.lifecycle import CrmMachine, StoreUrlFactory, machine_case
from crmcore.values import utc_now

__all__ = ["SegmentMachine", "criteria_trees", "segment_machine"]

#: Steps between the costlier checks (as of past moments, rebuild from zero).
CHECK_EVERY = 6

REGIONS = ("North", "South", "East")
_NEXT = {"suspect": "engage", "lead": "qualify", "prospect": "convert"}


def _atoms(segments: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    atoms: list[st.SearchStrategy[dict[str, Any]]] = [
        st.lists(st.sampled_from(["suspect", "lead", "prospect", "customer"]), min_size=1, max_size=2,
                 unique=True).map(lambda s: {"stage": s}),
        st.sampled_from(REGIONS).map(lambda r: {"field": "region", "eq": r}),
        st.just({"field": "region", "present": True}),
        st.integers(0, 100).map(lambda n: {"field": "score", "ge": str(n)}),
        st.sampled_from([["ann"], ["bob"], None]).map(lambda o: {"owner": o}),
        st.integers(0, 2).map(lambda n: {"open_opportunities": {"min": n}}),
        st.sampled_from(["100", "1000"]).map(lambda v: {"won_value": {"currency": "EUR", "ge": v}}),
        st.sampled_from(["subscribed", "unsubscribed", "unknown"]).map(
            lambda s: {"consent": "email", "is": s}),
        st.just({"last_interaction": {"within_days": 30}}),
        st.sampled_from(["email", "newsletter"]).map(lambda c: {"deliverable": c}),
    ]
    if segments:
        atoms.append(st.sampled_from(segments).map(lambda s: {"segment": s}))
    return st.one_of(atoms)


def criteria_trees(segments: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Criteria JSON over the machine's fields, of at most two levels of all / any / not."""
    return st.recursive(
        _atoms(segments),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda c: {"all": c}),
            st.lists(inner, min_size=1, max_size=3).map(lambda c: {"any": c}),
            inner.map(lambda c: {"not": c}),
        ),
        max_leaves=4,
    )


class SegmentMachine(CrmMachine):
    """Parties, deals and segments driven at random; segment members checked against direct evaluation."""

    parties = Bundle("parties")

    def __init__(self) -> None:
        super().__init__()
        self.stage: dict[UUID, str] = {}
        self.merged_into: dict[UUID, UUID | None] = {}
        #: opportunity -> (party named on it, status, amount)
        self.deals: dict[UUID, tuple[UUID, str, str]] = {}
        self.segments: dict[str, dict[str, Any]] = {}  # live segment id -> criteria JSON
        self.past: list[tuple[Any, dict[str, list[UUID]]]] = []
        self.steps = 0
        self.addresses = 0  # e-mail addresses handed out
        self.policy_version = 2  # the bounce policy's version (each re-applied one gets the next)
        self.reapplied_at: Any = None  # when a bounce policy was last re-applied

    @initialize()
    def fields(self) -> None:
        self.crm.define_field(name="region", kind="choice", choices=list(REGIONS), actor="machine")
        self.crm.define_field(name="score", kind="number", actor="machine")
        # One segment reads deliverability from the start: bounces and decisions move parties in and out.
        segment = self.crm.define_segment(name="Mailable", criteria={"deliverable": "email"}, actor="machine")
        self.segments[str(segment)] = self.crm.get_segment(segment).criteria

    # ------------------------------------------------------------------ parties

    @rule(target=parties, stage=st.sampled_from(["suspect", "lead", "prospect", "customer"]),
          owner=st.sampled_from(["ann", "bob", None]), email=st.booleans())
    def register(self, stage: str, owner: str | None, email: bool) -> UUID:
        emails = [self._new_address()] if email else []
        party = self.crm.register_party(kind="person", name=f"P{len(self.stage)}", stage=stage, owner=owner,
                                        emails=emails, actor="machine")
        self.stage[party], self.merged_into[party] = stage, None
        return party

    def _new_address(self) -> str:
        self.addresses += 1
        return f"p{self.addresses}@example.com"

    # ------------------------------------------------------------------ addresses and bounces

    @rule(party=parties, outcome=st.sampled_from(["soft_bounce", "soft_bounce", "hard_bounce", "delivered"]))
    def report_delivery(self, party: UUID, outcome: str) -> None:
        if self.merged_into[party] is not None:
            return
        primary = self.crm.get_party(party).primary_email
        if primary is not None:
            self.crm.record_delivery(party, address=primary, outcome=outcome, actor="machine")

    @rule(party=parties, kind=st.sampled_from(["hard_bounce", "soft_bounce", "complaint", "delivered"]))
    def campaign_report(self, party: UUID, kind: str) -> None:
        """A campaign sent to the party's primary e-mail address now, and the provider's report about it
        ingested: a decision with no report on the party's own ledger."""
        if self.merged_into[party] is not None:
            return
        primary = self.crm.get_party(party).primary_email
        if primary is None:
            return
        now = utc_now()
        campaign = running_campaign(newsletter=[party], at=now, addresses={party: primary}, actor="machine")
        self.crm._save(campaign)
        self.crm.ingest([{"external_id": uuid4().hex, "campaign_id": campaign.id,
                          "party_id": party, "kind": kind, "occurred_at": now}],
                        source="machine", actor="machine")

    @rule(limit=st.sampled_from([1, 3, 5]))
    def reapply_policy(self, limit: int) -> None:
        self.policy_version += 1
        self.crm.reapply_bounce_policy(BouncePolicy(soft_bounce_limit=limit, version=self.policy_version),
                                       actor="machine")
        self.reapplied_at = utc_now()

    @rule(party=parties)
    def new_primary_email(self, party: UUID) -> None:
        if self.merged_into[party] is None:
            self.crm.add_email(party, self._new_address(), primary=True, actor="machine")

    @rule(party=parties, holder=parties)
    def take_primary_email(self, party: UUID, holder: UUID) -> None:
        """``holder``'s primary e-mail address (perhaps suppressed) becomes ``party``'s primary one."""
        if party == holder or self.merged_into[party] is not None or self.merged_into[holder] is not None:
            return
        address = self.crm.get_party(holder).primary_email
        if address is not None:
            self.crm.remove_email(holder, address, actor="machine")
            self.crm.add_email(party, address, primary=True, actor="machine")

    @rule(party=parties, region=st.sampled_from([*REGIONS, None]), score=st.none() | st.integers(0, 100))
    def set_fields(self, party: UUID, region: str | None, score: int | None) -> None:
        if self.merged_into[party] is None:
            self.crm.set_fields(party, values={"region": region, "score": score}, actor="machine")

    @rule(party=parties, owner=st.sampled_from(["ann", "bob", None]))
    def assign(self, party: UUID, owner: str | None) -> None:
        if self.merged_into[party] is None:
            with suppress(CrmError):  # e.g. a stage that takes no owner: refused, nothing stored
                self.crm.assign(party, owner=owner, actor="machine")

    @rule(party=parties)
    def advance(self, party: UUID) -> None:
        if self.merged_into[party] is not None:
            return
        self.stage[party] = self.crm.get_party(party).stage.value  # merges and wins move stages too
        command = _NEXT.get(self.stage[party])
        if command is None:
            return
        fields = {"channel": "web_form"} if command == "engage" else {}
        getattr(self.crm, command)(party, actor="machine", **fields)
        self.stage[party] = {"engage": "lead", "qualify": "prospect", "convert": "customer"}[command]

    @rule(party=parties, subscribed=st.booleans())
    def consent(self, party: UUID, subscribed: bool) -> None:
        if self.merged_into[party] is not None:
            return
        if subscribed:
            self.crm.subscribe_to(party, channel="email", source="form", lawful_basis="consent",
                                  actor="machine")
        else:
            self.crm.unsubscribe_from(party, channel="email", source="link", actor="machine")

    @rule(survivor=parties, loser=parties)
    def merge(self, survivor: UUID, loser: UUID) -> None:
        if survivor == loser or self.merged_into[survivor] or self.merged_into[loser]:
            return
        self.crm.merge(survivor, loser, actor="machine", reason="duplicate")
        note(f"merged {loser} into {survivor}")
        self.merged_into[loser] = survivor

    @precondition(lambda self: any(self.merged_into.values()))
    @rule(data=st.data())
    def unmerge(self, data: st.DataObject) -> None:
        loser = data.draw(st.sampled_from(sorted(p for p, s in self.merged_into.items() if s)))
        survivor = self.merged_into[loser]
        if survivor is None or self.merged_into[survivor] is not None:
            return
        self.crm.unmerge(loser, actor="machine", reason="not a duplicate")
        self.merged_into[loser] = None
        self.stage[survivor] = self.crm.get_party(survivor).stage.value

    # ------------------------------------------------------------------ deals

    @rule(party=parties, amount=st.sampled_from(["50", "500", "5000"]))
    def open_deal(self, party: UUID, amount: str) -> None:
        if self.merged_into[party] is not None:
            return
        self.stage[party] = self.crm.get_party(party).stage.value
        if self.stage[party] not in ("prospect", "customer"):
            return
        deal = self.crm.open_opportunity(party, title="Deal", value=amount, currency="EUR",
                                         expected_close="2031-01-31", owner="ann", actor="machine")
        self.deals[deal] = (party, "open", amount)

    @precondition(lambda self: bool(self.deals))
    @rule(data=st.data(), won=st.booleans())
    def close_deal(self, data: st.DataObject, won: bool) -> None:
        deal = data.draw(st.sampled_from(sorted(self.deals)))
        party, status, amount = self.deals[deal]
        if status != "open":
            return
        if won:
            self.crm.win(deal, actor="machine")
            self.stage = {p: self.crm.get_party(p).stage.value for p in self.stage}  # a win may convert
        else:
            self.crm.lose(deal, ["price"], actor="machine")
        self.deals[deal] = (party, "won" if won else "lost", amount)

    # ------------------------------------------------------------------ segments

    @rule(data=st.data())
    def define(self, data: st.DataObject) -> None:
        criteria = data.draw(criteria_trees(sorted(self.segments)))
        segment = self.crm.define_segment(name=f"S{len(self.segments)}", criteria=criteria, actor="machine")
        self.segments[str(segment)] = self.crm.get_segment(segment).criteria

    @precondition(lambda self: bool(self.segments))
    @rule(data=st.data())
    def change(self, data: st.DataObject) -> None:
        segment = data.draw(st.sampled_from(sorted(self.segments)))
        others = sorted(s for s in self.segments if s != segment and not self._refers_to(s, segment))
        criteria = data.draw(criteria_trees(others))
        self.crm.change_segment(segment, criteria=criteria, actor="machine")
        self.segments[segment] = self.crm.get_segment(segment).criteria

    @precondition(lambda self: bool(self.segments))
    @rule(data=st.data())
    def retire(self, data: st.DataObject) -> None:
        segment = data.draw(st.sampled_from(sorted(self.segments)))
        if any(self._refers_to(s, segment) for s in self.segments if s != segment):
            return
        self.crm.retire_segment(segment, reason="done", actor="machine")
        del self.segments[segment]

    def _refers_to(self, segment: str, other: str) -> bool:
        criteria = {s: parse_criteria(c, check=False) for s, c in self.segments.items()}
        return other in referred_closure(criteria, referenced_segments(criteria[segment]))

    # ------------------------------------------------------------------ invariants

    def _expected(self) -> dict[str, set[str]]:
        """Each live segment's members, evaluated on the parties as loaded and the deals as recorded here."""
        facts: dict[str, Facts] = {}
        owned: dict[UUID, list[Any]] = {}
        for party, status, amount in self.deals.values():
            owner = party
            while self.merged_into.get(owner):
                owner = self.merged_into[owner] or owner
            closed = utc_text(utc_now()) if status == "won" else None
            owned.setdefault(owner, []).append((status, amount, "EUR", closed))
        for party, into in self.merged_into.items():
            if into is not None:
                continue
            view = self.crm.get_party(party)
            deliverable = self._deliverable(party, view.primary_email)
            facts[str(party)] = cast(Facts, dict(
                party_id=str(party), stage=view.stage.value, kind=view.kind.value, owner=view.owner,
                fields={k: str(v) if isinstance(v, Decimal) else v for k, v in view.custom_fields.items()},
                profile={}, consent={c.value: s.value for c, s in view.consent.items()},
                last_interaction_at=None if view.last_interaction_at is None
                else utc_text(view.last_interaction_at),
                deliverable={"email": deliverable, "newsletter": deliverable},
                **opportunity_facts(owned.get(party, [])),
            ))
        criteria: dict[str, Criterion] = {s: parse_criteria(c, check=False) for s, c in self.segments.items()}
        return memberships_of(criteria, facts, utc_now())

    def _deliverable(self, party: UUID, primary: str | None) -> bool:
        """Whether ``primary`` may be mailed: the decision recorded on the address (its aggregate) decides;
        with none, the party's own delivery ledger under the default bounce policy."""
        if primary is None:
            return False
        key = address_key_of(primary)
        status = self.crm._address_status_of(key)
        if status is not None and status.decisions:
            return not status.suppressed_at()
        entries = [e.model_dump() for e in self.crm.delivery_history(party) if e.address_key == key]
        return deliverability_of(ledger_reports(entries), key, None, BouncePolicy()).deliverable

    @invariant()
    def members_are_the_parties_the_criteria_select(self) -> None:
        expected = self._expected()
        live: dict[str, list[UUID]] = {}
        for segment in self.segments:
            got = self.crm.segment_members(segment).ids
            assert {str(p) for p in got} == expected[segment], (
                f"segment {segment} {self.segments[segment]}: {sorted(map(str, got))} != "
                f"{sorted(expected[segment])}")
            live[segment] = got
        self.past.append((utc_now(), live))

    @invariant()
    def changes_replay_to_the_members(self) -> None:
        for segment in self.segments:
            inside: set[UUID] = set()
            for change in self.crm.segment_changes(segment):
                if change.change == "entered":
                    assert change.party_id not in inside, f"{change.party_id} entered {segment} twice"
                    inside.add(change.party_id)
                else:
                    assert change.party_id in inside, f"{change.party_id} left {segment} without entering"
                    inside.discard(change.party_id)
            kept = set(self.crm._segments.members(segment))
            assert {str(p) for p in inside} == kept, f"the changes of {segment} do not replay to its members"

    @invariant()
    def as_of_each_past_step_and_rebuilt_from_zero(self) -> None:
        self.steps += 1
        if self.steps % CHECK_EVERY or not self.past:
            return
        for moment, live in self.past[:: max(1, len(self.past) // 3)]:
            for segment, members in live.items():
                if segment in self.segments:
                    known = self.crm.segment_members(segment, at=moment, known_at=moment).ids
                    assert known == members, f"segment {segment} as known at {moment}: {known} != {members}"
                    if self.reapplied_at is None or self.reapplied_at < moment:
                        then = self.crm.segment_members(segment, at=moment).ids
                        assert then == members, f"segment {segment} as of {moment}: {then} != {members}"
        kept = {s: (self.crm.segment_members(s).ids, self.crm.segment_changes(s)) for s in self.segments}
        self.crm.rebuild_view("segment_members")
        rebuilt = {s: (self.crm.segment_members(s).ids, self.crm.segment_changes(s)) for s in self.segments}
        assert rebuilt == kept, "segment_members rebuilt from zero differs from the one kept up to date"


def segment_machine(
    store_url_factory: StoreUrlFactory, *, settings: settings | None = None, name: str = "Segments",
) -> type[unittest.TestCase]:
    """A ``unittest.TestCase`` running :class:`SegmentMachine` on stores from ``store_url_factory``."""
    return machine_case(SegmentMachine, store_url_factory, settings=settings, name=name)
