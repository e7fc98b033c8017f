"""Consent and deliverability: may this party be contacted on this channel at that moment?

Pure functions over a party's ledgers (no I/O). A ledger is a list of plain, self-contained entries (dicts
with the fields of :class:`~crmcore.models.ConsentEntry` or :class:`~crmcore.models.DeliveryEntry`), so
ledgers of several parties can be concatenated and still be read. Entries are read in effective-time
order whatever order they were recorded in; entries effective at the same moment are read in recording
order (recording time, then position in the party's history).

The rules, with their default numbers (each configurable in :class:`BouncePolicy`):

- the last consent entry for the channel at or before the moment decides: subscribed allows,
  unsubscribed refuses, none refuses;
- e-mail and newsletter reach the party's e-mail address, phone and sms its phone number; with no
  address for the channel, contact is refused;
- a hard bounce makes the address undeliverable (a later delivery shows it works again);
- ``soft_bounce_limit`` (default 1) soft bounces since the last delivery exclude the address;
- a raw code is classified by the vendor map first, then as SMTP: ``5xx`` / ``5.x.x`` hard, ``4xx`` /
  ``4.x.x`` soft, ``2xx`` / ``2.x.x`` delivered; a code neither reads is left to the recorded outcome.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crmcore.identity import EmailAddress, PhoneNumber
from crmcore.models import ConsentEntry, ContactDecision, Deliverability, DeliveryEntry
from crmcore.values import (
    AddressKind,
    ConsentChannel,
    ConsentStatus,
    DeliveryOutcome,
    LawfulBasis,
)

__all__ = [
    "ADDRESS_KIND",
    "AddressKind",
    "BouncePolicy",
    "ConsentChannel",
    "ConsentStatus",
    "DeliveryOutcome",
    "LawfulBasis",
    "address_kind_of",
    "bounce_state",
    "consent_at",
    "current_consent",
    "deliverability_at",
    "entry_order",
    "may_contact",
]

#: Which kind of address each channel reaches.
ADDRESS_KIND: Mapping[ConsentChannel, AddressKind] = {
    ConsentChannel.EMAIL: AddressKind.EMAIL,
    ConsentChannel.NEWSLETTER: AddressKind.EMAIL,
    ConsentChannel.PHONE: AddressKind.PHONE,
    ConsentChannel.SMS: AddressKind.PHONE,
}

_ADDRESS_LABEL = {AddressKind.EMAIL: "e-mail address", AddressKind.PHONE: "phone number"}
_BASIC_CODE = re.compile(r"([245])[0-9]{2}")
_ENHANCED_CODE = re.compile(r"([245])\.[0-9]{1,3}\.[0-9]{1,3}")
_SMTP_CLASS = {
    "2": DeliveryOutcome.DELIVERED,
    "4": DeliveryOutcome.SOFT_BOUNCE,
    "5": DeliveryOutcome.HARD_BOUNCE,
}


class BouncePolicy(BaseModel):
    """How delivery reports decide whether an address may be used.

    ``soft_bounce_limit``: how many soft bounces since the last delivery exclude the address (default 1:
    any soft bounce excludes, as the domain asks; raise it to tolerate passing failures).
    ``vendor_codes``: codes of a sending tool (``"suppressed"``, ``"mailbox_full"``…) and what they mean;
    looked up case-insensitively, before the SMTP reading.
    ``delivery_clears_hard_bounce``: whether a delivery after a hard bounce makes the address usable again.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    soft_bounce_limit: Annotated[int, Field(ge=1)] = 1
    vendor_codes: Mapping[str, DeliveryOutcome] = Field(default_factory=dict)
    delivery_clears_hard_bounce: bool = True

    @field_validator("vendor_codes")
    @classmethod
    def _folded_codes(cls, value: Mapping[str, DeliveryOutcome]) -> Mapping[str, DeliveryOutcome]:
        return {code.strip().casefold(): outcome for code, outcome in value.items()}

    def classify(self, raw_code: str | None) -> DeliveryOutcome | None:
        """What a raw code means: a vendor code, else an SMTP basic or enhanced status; None if neither.

        ``"550"``, ``"5.1.1"`` and ``"550 5.1.1 user unknown"`` are hard bounces; ``"421"`` and ``"4.2.2"``
        soft bounces; ``"250"`` a delivery.
        """
        if raw_code is None:
            return None
        text = raw_code.strip()
        vendor = self.vendor_codes.get(text.casefold())
        if vendor is not None:
            return vendor
        first = text.split(maxsplit=1)[0] if text else ""
        for pattern in (_BASIC_CODE, _ENHANCED_CODE):
            match = pattern.fullmatch(first)
            if match is not None:
                return _SMTP_CLASS[match.group(1)]
        return None

    def outcome_of(self, entry: Mapping[str, Any]) -> DeliveryOutcome:
        """The outcome of a delivery entry under this policy: its raw code if readable, else as recorded."""
        return self.classify(entry.get("raw_code")) or DeliveryOutcome(entry["outcome"])


def address_kind_of(channel: ConsentChannel) -> AddressKind:
    """The kind of address ``channel`` reaches."""
    return ADDRESS_KIND[ConsentChannel(channel)]


def entry_order(entry: Mapping[str, Any]) -> tuple[datetime, datetime, int]:
    """The reading order of ledger entries: effective time, then recording time, then position."""
    return (entry["effective_at"], entry["recorded_at"], entry["version"])


def _until(entries: Iterable[Mapping[str, Any]], at: datetime | None) -> list[Mapping[str, Any]]:
    kept = [e for e in entries if at is None or e["effective_at"] <= at]
    return sorted(kept, key=entry_order)


def consent_at(
    entries: Iterable[Mapping[str, Any]], channel: ConsentChannel, at: datetime | None = None,
) -> ConsentEntry | None:
    """The consent entry in force for ``channel`` at ``at`` (None: the latest), or None if there is none."""
    wanted = ConsentChannel(channel).value
    relevant = [e for e in _until(entries, at) if e["channel"] == wanted]
    return ConsentEntry.model_validate(relevant[-1]) if relevant else None


def current_consent(entries: Iterable[Mapping[str, Any]]) -> dict[ConsentChannel, ConsentStatus]:
    """The latest status of every channel that has a consent entry."""
    status: dict[ConsentChannel, ConsentStatus] = {}
    for entry in _until(entries, None):
        status[ConsentChannel(entry["channel"])] = ConsentStatus(entry["status"])
    return {channel: status[channel] for channel in ConsentChannel if channel in status}


def bounce_state(ordered: Iterable[Mapping[str, Any]], policy: BouncePolicy) -> tuple[bool, int]:
    """After reports on one address, in reading order: (hard-bounced?, soft bounces since the last delivery).

    Each report needs only ``outcome`` and ``raw_code``; the address is undeliverable when hard-bounced
    or when the soft bounces reach ``policy.soft_bounce_limit``.
    """
    hard_bounced, soft_bounces = False, 0
    for entry in ordered:
        outcome = policy.outcome_of(entry)
        if outcome is DeliveryOutcome.DELIVERED:
            soft_bounces = 0
            if policy.delivery_clears_hard_bounce:
                hard_bounced = False
        elif outcome is DeliveryOutcome.SOFT_BOUNCE:
            soft_bounces += 1
        else:
            hard_bounced = True
    return hard_bounced, soft_bounces


def deliverability_at(
    entries: Iterable[Mapping[str, Any]],
    address_key: str,
    at: datetime | None = None,
    policy: BouncePolicy | None = None,
) -> Deliverability:
    """Whether the address with ``address_key`` is deliverable at ``at`` (None: now), under ``policy``."""
    rules = policy or BouncePolicy()
    relevant = _until((e for e in entries if e["address_key"] == address_key), at)
    hard_bounced, soft_bounces = bounce_state(relevant, rules)
    last = relevant[-1] if relevant else None
    if hard_bounced:
        reason = "the address hard-bounced"
    elif soft_bounces >= rules.soft_bounce_limit:
        reason = (f"the address soft-bounced {soft_bounces} time(s) since its last delivery "
                  f"(limit {rules.soft_bounce_limit})")
    elif last is None:
        reason = "no delivery reported for the address"
    else:
        reason = "the address is deliverable"
    return Deliverability(
        address_key=address_key,
        at=at,
        deliverable=not hard_bounced and soft_bounces < rules.soft_bounce_limit,
        reason=reason,
        hard_bounced=hard_bounced,
        soft_bounces=soft_bounces,
        last=DeliveryEntry.model_validate(last) if last is not None else None,
    )


def may_contact(
    consents: Iterable[Mapping[str, Any]],
    deliveries: Iterable[Mapping[str, Any]],
    channel: ConsentChannel,
    at: datetime | None = None,
    *,
    address: EmailAddress | PhoneNumber | None,
    policy: BouncePolicy | None = None,
) -> ContactDecision:
    """Could the party whose ledgers these are be contacted on ``channel`` at ``at``, at ``address``?

    Allowed only when the consent in force is a subscription, an address of the channel's kind is given,
    and that address is deliverable then. The decision says why, and which entry decided.
    """
    channel = ConsentChannel(channel)
    entry = consent_at(consents, channel, at)
    shown = str(address) if address is not None else None

    def refuse(reason: str, deliverability: Deliverability | None = None) -> ContactDecision:
        return ContactDecision(allowed=False, reason=reason, channel=channel, at=at, address=shown,
                               consent=entry, deliverability=deliverability)

    if entry is None:
        return refuse(f"no consent recorded for {channel.value}")
    if entry.status is ConsentStatus.UNSUBSCRIBED:
        return refuse(f"unsubscribed from {channel.value} on {entry.effective_at.isoformat()} "
                      f"(source: {entry.source})")
    kind = ADDRESS_KIND[channel]
    if address is None:
        return refuse(f"no {_ADDRESS_LABEL[kind]} to reach the party by {channel.value}")
    if (kind is AddressKind.EMAIL) != isinstance(address, EmailAddress):
        return refuse(f"{shown} is not an {_ADDRESS_LABEL[kind]}, which {channel.value} needs")
    state = deliverability_at(deliveries, address.key, at, policy)
    if not state.deliverable:
        return refuse(f"{shown}: {state.reason}", state)
    basis = entry.lawful_basis.value if entry.lawful_basis else "unstated"
    return ContactDecision(
        allowed=True,
        reason=(f"subscribed to {channel.value} on {entry.effective_at.isoformat()} "
                f"(lawful basis: {basis}; source: {entry.source})"),
        channel=channel, at=at, address=shown, consent=entry, deliverability=state,
    )
