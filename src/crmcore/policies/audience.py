"""The audience policy: who of a segment's members a campaign reaches on each channel, and why not the rest.

Pure: it reads what it is given (each member's consent in force, primary addresses, open negotiations,
and the sets of suppressed addresses, inactive parties and probable duplicates) and returns the frozen
audience. Each member is checked per channel against the rules below, in this order; the first that fails
excludes it from that channel, with the reason and a readable detail:

1. ``no_consent`` / ``unsubscribed`` - the consent in force for the channel's consent channel (newsletter:
   ``newsletter``, telemarketing: ``phone``) is not a subscription;
2. ``no_address`` - no primary e-mail address (newsletter) or phone number (telemarketing);
3. ``suppressed`` - the address is suppressed by the bounce policy (hard bounce, repeated soft bounces,
   complaint);
4. ``inactive`` - newsletter only, unless the campaign includes inactive parties: no open or click for the
   engagement policy's period although mailed for that long;
5. ``open_negotiation`` - when the campaign excludes them (default): the party has an open opportunity;
6. ``duplicate`` - another recipient of the channel has the same address, or the duplicate detector finds
   the two are probably the same party; the one registered first (smaller id) stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from crmcore.values import CAMPAIGN_CONSENT, CampaignChannel, ExclusionReason

__all__ = ["DEFAULT_AUDIENCE", "Audience", "AudiencePolicy", "Candidate", "select_audience"]


class AudiencePolicy(BaseModel):
    """The audience rules' settings: the policy's name and version (recorded with every launch), and whether
    and how strictly probable duplicates (``crm.duplicates``) are looked for among the recipients."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "audience"
    version: int = Field(default=1, ge=1)
    check_duplicates: bool = True
    duplicate_threshold: float | None = Field(default=None, gt=0, le=1)

    def record(self) -> dict[str, Any]:
        """What a launch records about the policy."""
        return {"name": self.name, "version": self.version}


#: The audience policy campaigns launch under unless told otherwise.
DEFAULT_AUDIENCE = AudiencePolicy()


@dataclass(frozen=True)
class Candidate:
    """What the audience rules read about one segment member (ids and addresses as text)."""

    party_id: str
    consent: Mapping[str, str] = field(default_factory=dict)
    email: str | None = None
    phone: str | None = None
    open_opportunities: int = 0

    def address(self, channel: CampaignChannel) -> str | None:
        """The primary address the channel reaches."""
        return self.email if channel is CampaignChannel.NEWSLETTER else self.phone


def address_key(channel: CampaignChannel, address: str) -> str:
    """The matching key of an address as the suppression decisions know it (e-mail lower-cased, E.164)."""
    return address.lower() if channel is CampaignChannel.NEWSLETTER else address


@dataclass(frozen=True)
class Audience:
    """The frozen audience: ``recipients`` per channel as ``(party_id, address)`` in party-id order, and
    ``exclusions`` as ``(party_id, channel, reason, detail)``."""

    recipients: dict[str, list[tuple[str, str]]]
    exclusions: list[tuple[str, str, str, str]]

    def excluded(
        self, reason: ExclusionReason | str, channel: CampaignChannel | str | None = None,
    ) -> list[str]:
        """The parties excluded for ``reason`` (on ``channel``, if given)."""
        wanted = ExclusionReason(reason).value
        return [p for p, c, r, _ in self.exclusions
                if r == wanted and (channel is None or c == CampaignChannel(channel).value)]


def select_audience(
    candidates: Iterable[Candidate],
    channels: Sequence[CampaignChannel | str],
    *,
    suppressed: Iterable[str] = (),
    inactive: Iterable[str] = (),
    duplicates: Iterable[tuple[str, str, float]] = (),
    include_inactive: bool = False,
    exclude_open_negotiations: bool = True,
) -> Audience:
    """The audience of ``candidates`` on each of ``channels`` under the rules above.

    ``suppressed`` holds address keys (:func:`address_key`), ``inactive`` party ids, ``duplicates`` pairs
    ``(party_id, other_id, score)`` of probable duplicates.
    """
    blocked, asleep = set(suppressed), set(inactive)
    pairs = [(a, b, s) for a, b, s in duplicates]
    ordered = sorted(candidates, key=lambda c: c.party_id)
    recipients: dict[str, list[tuple[str, str]]] = {}
    exclusions: list[tuple[str, str, str, str]] = []
    for given in channels:
        channel = CampaignChannel(given)
        kept: list[tuple[str, str]] = []
        holders: dict[str, str] = {}
        for candidate in ordered:
            pid, address = candidate.party_id, candidate.address(channel) or ""
            refusal = _refusal(candidate, channel, blocked, asleep if not include_inactive else set(),
                               exclude_open_negotiations)
            key = address_key(channel, address)
            if refusal is None and key in holders:
                refusal = (ExclusionReason.DUPLICATE, f"same address as {holders[key]}")
            if refusal is not None:
                exclusions.append((pid, channel.value, refusal[0].value, refusal[1]))
                continue
            holders[key] = pid
            kept.append((pid, address))
        recipients[channel.value] = _without_duplicates(kept, pairs, channel, exclusions)
    return Audience(recipients=recipients, exclusions=exclusions)


def _refusal(
    candidate: Candidate,
    channel: CampaignChannel,
    suppressed: set[str],
    inactive: set[str],
    exclude_open_negotiations: bool,
) -> tuple[ExclusionReason, str] | None:
    """The first rule ``candidate`` fails on ``channel`` (reason and detail), or None."""
    consent_channel = CAMPAIGN_CONSENT[channel].value
    status = candidate.consent.get(consent_channel)
    if status is None:
        return ExclusionReason.NO_CONSENT, f"no consent recorded for {consent_channel}"
    if status != "subscribed":
        return ExclusionReason.UNSUBSCRIBED, f"unsubscribed from {consent_channel}"
    address = candidate.address(channel)
    if not address:
        what = "e-mail address" if channel is CampaignChannel.NEWSLETTER else "phone number"
        return ExclusionReason.NO_ADDRESS, f"no {what}"
    if address_key(channel, address) in suppressed:
        return ExclusionReason.SUPPRESSED, f"{address} is suppressed"
    if channel is CampaignChannel.NEWSLETTER and candidate.party_id in inactive:
        return ExclusionReason.INACTIVE, "no open or click in the engagement period"
    count = candidate.open_opportunities
    if exclude_open_negotiations and count:
        return ExclusionReason.OPEN_NEGOTIATION, f"{count} open opportunit{'y' if count == 1 else 'ies'}"
    return None


def _without_duplicates(
    kept: list[tuple[str, str]],
    pairs: list[tuple[str, str, float]],
    channel: CampaignChannel,
    exclusions: list[tuple[str, str, str, str]],
) -> list[tuple[str, str]]:
    """Drop the later party of each probable-duplicate pair whose parties are both still recipients."""
    if not pairs:
        return kept
    present = {pid for pid, _ in kept}
    dropped: dict[str, tuple[str, float]] = {}
    for a, b, score in sorted(pairs, key=lambda p: (-p[2], min(p[0], p[1]), max(p[0], p[1]))):
        first, second = sorted((a, b))
        if first in present and second in present and first not in dropped and second not in dropped:
            dropped[second] = (first, score)
    for pid in sorted(dropped):
        other, score = dropped[pid]
        exclusions.append((pid, channel.value, ExclusionReason.DUPLICATE.value,
                           f"probably the same as {other} (match {score:.2f})"))
    return [(pid, address) for pid, address in kept if pid not in dropped]
