"""The party lifecycle's transition rules.

Each ``check_*`` function is pure: given the facts it needs, it returns nothing when the move is allowed
and raises :class:`~crmcore.exceptions.IllegalTransition` when it is not. The aggregate calls them before
recording any event, so a refused command records nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from crmcore.exceptions import IllegalTransition
from crmcore.values import PartyKind, Stage

__all__ = [
    "CONVERTIBLE",
    "DISQUALIFIABLE",
    "check_can_assign",
    "check_can_convert",
    "check_can_disqualify",
    "check_can_engage",
    "check_can_link",
    "check_can_merge",
    "check_can_qualify",
    "check_can_reopen",
    "check_can_restore",
    "check_can_set_aside",
    "check_registration",
    "identity_fields_refused",
    "qualified_stage",
]

#: Stages from which a purchase converts a party to customer.
CONVERTIBLE = frozenset({Stage.PROSPECT, Stage.TARGET})
#: Stages from which a party can be disqualified.
DISQUALIFIABLE = frozenset({Stage.LEAD, Stage.PROSPECT, Stage.TARGET})

_REGISTRABLE = {
    PartyKind.PERSON: frozenset({Stage.SUSPECT, Stage.LEAD, Stage.PROSPECT, Stage.CUSTOMER}),
    PartyKind.ORGANIZATION: frozenset({Stage.SUSPECT, Stage.LEAD, Stage.TARGET, Stage.CUSTOMER}),
}


def _a(word: str) -> str:
    """The word with its indefinite article: "a lead", "an organization"."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _refuse(message: str, party_id: UUID | None, stage: Stage | None) -> IllegalTransition:
    return IllegalTransition(message, party_id=party_id, stage=stage.value if stage else None)


def qualified_stage(kind: PartyKind) -> Stage:
    """The stage a qualified lead of this kind reaches: a person a prospect, an organization a target."""
    return Stage.PROSPECT if kind is PartyKind.PERSON else Stage.TARGET


def check_registration(kind: PartyKind, stage: Stage) -> None:
    """A party may be registered at any stage its kind can hold, except disqualified."""
    if stage not in _REGISTRABLE[kind]:
        raise _refuse(f"{_a(kind.value)} cannot be registered as {_a(stage.value)}", None, stage)


def check_can_engage(party_id: UUID, stage: Stage) -> None:
    """Only a suspect's first interaction makes it a lead."""
    if stage is not Stage.SUSPECT:
        raise _refuse(f"only a suspect can engage; the party is {_a(stage.value)}", party_id, stage)


def check_can_qualify(party_id: UUID, stage: Stage) -> None:
    """Only a lead can be qualified."""
    if stage is not Stage.LEAD:
        raise _refuse(f"only a lead can be qualified; the party is {_a(stage.value)}", party_id, stage)


def check_can_disqualify(party_id: UUID, stage: Stage) -> None:
    """Leads, prospects and targets can be disqualified; suspects and customers cannot."""
    if stage not in DISQUALIFIABLE:
        raise _refuse(f"{_a(stage.value)} cannot be disqualified", party_id, stage)


def check_can_reopen(party_id: UUID, stage: Stage) -> None:
    """Only a disqualified party can be re-opened (it becomes a lead again)."""
    if stage is not Stage.DISQUALIFIED:
        raise _refuse(f"only a disqualified party can be re-opened; the party is {_a(stage.value)}",
                      party_id, stage)


def check_can_convert(party_id: UUID, stage: Stage) -> None:
    """Only a prospect or a target converts to customer; a lead must be qualified first."""
    if stage not in CONVERTIBLE:
        raise _refuse(f"{_a(stage.value)} cannot be converted to customer", party_id, stage)


def check_can_assign(party_id: UUID, stage: Stage) -> None:
    """Any party but a disqualified one can be assigned to a sales rep."""
    if stage is Stage.DISQUALIFIED:
        raise _refuse("a disqualified party cannot be assigned", party_id, stage)


def check_can_set_aside(party_id: UUID, stage: Stage, set_aside: bool) -> None:
    """A party not already set aside can be set aside, whatever its stage."""
    if set_aside:
        raise _refuse("the party is already set aside", party_id, stage)


def check_can_restore(party_id: UUID, stage: Stage, set_aside: bool) -> None:
    """Only a party that is set aside can be restored."""
    if not set_aside:
        raise _refuse("the party is not set aside", party_id, stage)


def check_can_link(
    person_id: UUID,
    person_kind: PartyKind,
    person_stage: Stage,
    organization_kind: PartyKind,
    organization_stage: Stage,
) -> None:
    """A prospect may belong to a target or customer organization; a customer person to a customer one."""
    if person_kind is not PartyKind.PERSON:
        raise _refuse("only a person can be linked to an organization", person_id, person_stage)
    if organization_kind is not PartyKind.ORGANIZATION:
        raise _refuse("a person can only be linked to an organization", person_id, person_stage)
    if person_stage is Stage.PROSPECT:
        allowed = {Stage.TARGET, Stage.CUSTOMER}
    elif person_stage is Stage.CUSTOMER:
        allowed = {Stage.CUSTOMER}
    else:
        raise _refuse(f"{_a(person_stage.value)} cannot be linked to an organization",
                      person_id, person_stage)
    if organization_stage not in allowed:
        raise _refuse(
            f"{_a(person_stage.value)} cannot belong to {_a(organization_stage.value)} organization",
            person_id, person_stage,
        )


#: Identity fields only one kind of party has.
_KIND_ONLY = {
    PartyKind.PERSON: frozenset({"given_name", "family_name", "birth_date"}),
    PartyKind.ORGANIZATION: frozenset({"vat_number"}),
}


def identity_fields_refused(kind: PartyKind, fields: Iterable[str]) -> list[str]:
    """The identity fields among ``fields`` that a party of ``kind`` cannot hold."""
    other = PartyKind.ORGANIZATION if kind is PartyKind.PERSON else PartyKind.PERSON
    return sorted(f for f in fields if f in _KIND_ONLY[other])


def check_can_merge(
    survivor_id: UUID, survivor_kind: PartyKind, survivor_merged_into: UUID | None,
    loser_id: UUID, loser_kind: PartyKind, loser_merged_into: UUID | None,
) -> None:
    """Only two distinct, unmerged parties of the same kind merge."""
    if survivor_id == loser_id:
        raise IllegalTransition("a party cannot be merged into itself", party_id=loser_id)
    if survivor_kind is not loser_kind:
        raise IllegalTransition(
            f"a {loser_kind.value} cannot be merged into a {survivor_kind.value}", party_id=loser_id
        )
    for party_id, merged_into in ((loser_id, loser_merged_into), (survivor_id, survivor_merged_into)):
        if merged_into is not None:
            raise IllegalTransition(f"party {party_id} was already merged into {merged_into}",
                                    party_id=party_id, stage="merged")
