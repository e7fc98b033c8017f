"""A model-based state machine over register / update / link / merge / unmerge, driving a real CRM.

The model keeps only what was recorded directly on each party (profile traits, e-mail addresses, its
organization) and which party is merged into which. From that it knows what every party must hold:
its own facts plus everything of the parties merged into it, recursively. After every step the
invariants check that nothing recorded is lost or misplaced by any sequence of merges and unmerges:

- each active party holds exactly its own traits, e-mail addresses and consent reports plus those of the
  parties merged into it (so an unmerge takes back exactly what the merge brought, and nothing recorded
  since);
- every e-mail address ever recorded is claimed by the party that now stands for its owner;
- every person's link is reachable: the party standing for the person is a member of the party standing
  for its organization;
- an unmerged loser reads exactly as it did just before its merge (version and times aside);
- the ``parties`` view lists exactly the active parties.

Run it against a store of your choice::

    from crmcore.testing import merge_machine

    TestMergesInMemory = merge_machine(lambda: "memory:")
"""

from __future__ import annotations

import unittest
from typing import Any
from uuid import UUID

from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, invariant, precondition, rule

from crmcore.exceptions import IllegalTransition
from crmcore.testing.facts import assert_facts_agree
from crmcore.testing.lifecycle import CrmMachine, StoreUrlFactory, machine_case

__all__ = ["MergeModel", "PartyMergeMachine", "merge_machine"]

_IGNORED = {"version", "last_effective_at"}


class MergeModel:
    """What was recorded on each party directly, and which party is merged into which."""

    def __init__(self) -> None:
        self.kind: dict[UUID, str] = {}
        self.traits: dict[UUID, set[str]] = {}
        self.emails: dict[UUID, set[str]] = {}
        self.consents: dict[UUID, set[str]] = {}
        self.link: dict[UUID, UUID] = {}
        self.merged_into: dict[UUID, UUID | None] = {}
        self.before_merge: dict[UUID, dict[str, Any]] = {}

    def active(self) -> list[UUID]:
        return [p for p, into in self.merged_into.items() if into is None]

    def resolve(self, party: UUID) -> UUID:
        while (into := self.merged_into[party]) is not None:
            party = into
        return party

    def children(self, party: UUID) -> list[UUID]:
        return [p for p, into in self.merged_into.items() if into == party]

    def expected(self, facts: dict[UUID, set[str]], party: UUID) -> set[str]:
        found = set(facts[party])
        for child in self.children(party):
            found |= self.expected(facts, child)
        return found


class PartyMergeMachine(CrmMachine):
    """Registers, updates, links, merges and unmerges parties; the model says what each must hold."""

    parties = Bundle("parties")

    def __init__(self) -> None:
        super().__init__()
        self.model = MergeModel()
        self.counter = 0

    def _token(self) -> str:
        self.counter += 1
        return f"t{self.counter}"

    # ------------------------------------------------------------------ rules

    @rule(target=parties, kind=st.sampled_from(["person", "organization"]))
    def register(self, kind: str) -> UUID:
        email = f"{self._token()}@example.com"
        party = self.crm.register_party(
            kind=kind, name=f"Party {self.counter}", stage="prospect" if kind == "person" else "target",
            emails=[email], actor="machine",
        )
        m = self.model
        m.kind[party], m.traits[party], m.emails[party], m.consents[party] = kind, set(), {email}, set()
        m.merged_into[party] = None
        return party

    @rule(party=parties)
    def record_trait(self, party: UUID) -> None:
        if self.model.merged_into[party] is not None:
            return
        trait = self._token()
        self.crm.update_profile(party, changes={trait: trait}, actor="machine")
        self.model.traits[party].add(trait)

    @rule(party=parties)
    def add_email(self, party: UUID) -> None:
        if self.model.merged_into[party] is not None:
            return
        email = f"{self._token()}@example.com"
        self.crm.add_email(party, email, actor="machine")
        self.model.emails[party].add(email)

    @rule(party=parties, subscribed=st.booleans(), channel=st.sampled_from(["email", "newsletter", "sms"]))
    def record_consent(self, party: UUID, subscribed: bool, channel: str) -> None:
        if self.model.merged_into[party] is not None:
            return
        report = self._token()
        if subscribed:
            self.crm.subscribe_to(party, channel=channel, source="web form", lawful_basis="consent",
                                  external_id=report, actor="machine")
        else:
            self.crm.unsubscribe_from(party, channel=channel, source="mail tool", external_id=report,
                                      actor="machine")
        self.model.consents[party].add(report)

    @rule(person=parties, organization=parties)
    def link(self, person: UUID, organization: UUID) -> None:
        m = self.model
        if (m.kind[person], m.kind[organization]) != ("person", "organization"):
            return
        if m.merged_into[person] is not None or m.merged_into[organization] is not None:
            return
        self.crm.link(person, organization_id=organization, actor="machine")
        m.link[person] = organization

    @rule(survivor=parties, loser=parties, take_loser_name=st.booleans())
    def merge(self, survivor: UUID, loser: UUID, take_loser_name: bool) -> None:
        m = self.model
        legal = (
            survivor != loser and m.kind[survivor] == m.kind[loser]
            and m.merged_into[survivor] is None and m.merged_into[loser] is None
        )
        before = self.crm.get_party(loser).model_dump(exclude=_IGNORED)
        position = self.crm.position
        choose = {"name": "loser"} if take_loser_name else {}
        if not legal:
            try:
                self.crm.merge(survivor, loser, actor="machine", reason="dup", choose=choose)
            except IllegalTransition:
                assert self.crm.position == position, "a refused merge recorded something"
                return
            raise AssertionError("an illegal merge was accepted")
        self.crm.merge(survivor, loser, actor="machine", reason="dup", choose=choose)
        note(f"merged {loser} into {survivor}")
        m.merged_into[loser] = survivor
        m.before_merge[loser] = before

    @precondition(lambda self: any(v is not None for v in self.model.merged_into.values()))
    @rule(data=st.data())
    def unmerge(self, data: st.DataObject) -> None:
        m = self.model
        merged = sorted(p for p, into in m.merged_into.items() if into is not None)
        loser = data.draw(st.sampled_from(merged))
        survivor = m.merged_into[loser]
        assert survivor is not None
        position = self.crm.position
        if m.merged_into[survivor] is not None:
            try:
                self.crm.unmerge(loser, actor="machine", reason="not a dup")
            except IllegalTransition:
                assert self.crm.position == position, "a refused unmerge recorded something"
                return
            raise AssertionError("an unmerge from a merged survivor was accepted")
        restored, _ = self.crm.unmerge(loser, actor="machine", reason="not a dup")
        note(f"unmerged {loser} from {survivor}")
        m.merged_into[loser] = None
        assert restored.model_dump(exclude=_IGNORED) == m.before_merge.pop(loser), (
            "the unmerged party differs from the party before its merge"
        )

    # ------------------------------------------------------------------ invariants

    @invariant()
    def nothing_recorded_is_lost_or_misplaced(self) -> None:
        m = self.model
        for party in m.active():
            view = self.crm.get_party(party)
            traits = {k for k in view.profile}
            assert traits == m.expected(m.traits, party), f"traits of {party}"
            assert {e.lower() for e in view.emails} == m.expected(m.emails, party), f"emails of {party}"
            reports = {e.external_id for e in self.crm.consent_history(party)}
            assert reports == m.expected(m.consents, party), f"consent reports of {party}"

    @invariant()
    def every_email_is_claimed_by_the_party_standing_for_its_owner(self) -> None:
        m = self.model
        for party, emails in m.emails.items():
            for email in emails:
                assert self.crm.holder_of(email=email) == m.resolve(party), f"claim on {email}"

    @invariant()
    def every_link_is_reachable(self) -> None:
        m = self.model
        for person, organization in m.link.items():
            members = {s.id for s in self.crm.members(organization)}
            assert m.resolve(person) in members, f"link {person} -> {organization} lost"

    @invariant()
    def the_parties_view_lists_the_active_parties(self) -> None:
        assert sorted(p.id for p in self.crm.parties()) == sorted(self.model.active())

    @invariant()
    def the_facts_view_agrees_with_the_parties(self) -> None:
        assert_facts_agree(self.crm)


def merge_machine(
    store_url_factory: StoreUrlFactory, *, settings: settings | None = None, name: str = "PartyMerges",
) -> type[unittest.TestCase]:
    """A ``unittest.TestCase`` running :class:`PartyMergeMachine` on stores from ``store_url_factory``.

    The factory is called once per example and returns a URL, or a context manager yielding one and
    cleaning up afterwards.
    """

    return machine_case(PartyMergeMachine, store_url_factory, settings=settings, name=name)
