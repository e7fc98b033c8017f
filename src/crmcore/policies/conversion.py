"""Conversion on a won deal: which parties a won opportunity makes customers (pure).

A prospect or target whose opportunity is won becomes a customer; so do the prospects linked to a won
target (they are now a customer organization's people). A customer stays one. Every conversion names the
win that caused it, and a win already applied to a party converts nothing: replaying the log never
converts twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

import attrs

from crmcore.values import PartyKind, Stage

__all__ = [
    "CONVERTED_BY_A_WIN",
    "Conversion",
    "PartyFacts",
    "cause_of_win",
    "needs_conversion",
    "when_opportunity_won_convert_party",
]

#: Stages a win converts.
CONVERTED_BY_A_WIN = frozenset({Stage.PROSPECT, Stage.TARGET})


@attrs.frozen
class PartyFacts:
    """What the policy needs to know of a party."""

    id: UUID
    kind: PartyKind
    stage: Stage
    conversion_causes: tuple[Mapping[str, Any], ...] = ()


@attrs.frozen
class Conversion:
    """A decision: convert ``party_id``, caused by ``caused_by``, at ``effective_at``."""

    party_id: UUID
    caused_by: Mapping[str, Any]
    reference: str


def cause_of_win(opportunity_id: UUID, version: int) -> dict[str, Any]:
    """How a conversion names the win that caused it."""
    return {"opportunity_id": str(opportunity_id), "event": "Won", "version": version}


def when_opportunity_won_convert_party(
    opportunity_id: UUID,
    won_version: int,
    party: PartyFacts,
    linked_people: Iterable[PartyFacts] = (),
) -> list[Conversion]:
    """The conversions a win causes: the party (if a prospect or target), then its linked prospects.

    ``linked_people`` are the persons belonging to the party when it is an organization. A party that
    already records this cause, or is not at a stage a win converts, yields nothing.
    """
    cause = cause_of_win(opportunity_id, won_version)
    reference = f"opportunity {opportunity_id}"
    decisions: list[Conversion] = []
    if needs_conversion(party, cause):
        decisions.append(Conversion(party.id, cause, reference))
    if party.kind is PartyKind.ORGANIZATION and party.stage in (*CONVERTED_BY_A_WIN, Stage.CUSTOMER):
        decisions += [
            Conversion(person.id, cause, reference)
            for person in linked_people
            if person.kind is PartyKind.PERSON and person.stage is Stage.PROSPECT
            and needs_conversion(person, cause)
        ]
    return decisions


def needs_conversion(party: PartyFacts, cause: Mapping[str, Any]) -> bool:
    """Whether ``party`` is at a stage a win converts and has not recorded ``cause`` yet."""
    return party.stage in CONVERTED_BY_A_WIN and dict(cause) not in [dict(c) for c in party.conversion_causes]
