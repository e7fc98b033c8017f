"""Frozen value types shared by commands, events and read models."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, StringConstraints, WithJsonSchema

__all__ = [
    "ActorId",
    "AddressKind",
    "Channel",
    "ConsentChannel",
    "ConsentStatus",
    "DeliveryOutcome",
    "EffectiveTime",
    "Evidence",
    "ExternalId",
    "LawfulBasis",
    "PartyKind",
    "RawCode",
    "Source",
    "Stage",
    "utc_now",
]


class PartyKind(StrEnum):
    """What a party is; fixed at registration."""

    PERSON = "person"
    ORGANIZATION = "organization"


class Stage(StrEnum):
    """Where a party stands in the lifecycle (see docs/concepts.md)."""

    SUSPECT = "suspect"
    LEAD = "lead"
    PROSPECT = "prospect"
    TARGET = "target"
    CUSTOMER = "customer"
    DISQUALIFIED = "disqualified"


class Channel(StrEnum):
    """How a party interacted with the company."""

    EMAIL = "email"
    WEB_FORM = "web_form"
    DOWNLOAD = "download"
    PHONE = "phone"
    MEETING = "meeting"
    SOCIAL = "social"
    EVENT = "event"
    REFERRAL = "referral"
    OTHER = "other"


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the moment lies outside the years 1-9999 in UTC") from None


_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F))
_CONTROL_IN_TEXT = _CONTROL - {"\t", "\n", "\r"}


def _no_control_characters(value: str) -> str:
    """Names and ids hold no control characters (NUL cannot even be stored by PostgreSQL)."""
    if not _CONTROL.isdisjoint(value):
        raise ValueError("control characters are not allowed")
    return value


def _no_control_characters_in_text(value: str) -> str:
    """Free text may break lines, but holds no other control characters."""
    if not _CONTROL_IN_TEXT.isdisjoint(value):
        raise ValueError("control characters other than tab and line breaks are not allowed")
    return value


_Plain = AfterValidator(_no_control_characters)
_Text = AfterValidator(_no_control_characters_in_text)


#: Who did something: an id the host application gives (a user id, a service name).
ActorId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), _Plain]

#: A timezone-aware moment, normalised to UTC. Naive datetimes are refused.
EffectiveTime = Annotated[AwareDatetime, AfterValidator(_to_utc)]

#: A display name: stripped, 1 to 200 characters.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), _Plain]

#: A free-text reason: stripped, 1 to 500 characters.
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), _Text]

#: A profile trait's name: a lower-case identifier.
TraitName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]

def _check_trait_value(value: object) -> object:
    """A trait is text (1-500 characters), a whole number, a flag, a list of up to 100 texts, or None."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError("a number trait fits in 64 bits")
        return value
    if isinstance(value, str):
        text = _no_control_characters_in_text(value.strip())
        if not 1 <= len(text) <= 500:
            raise ValueError("a text trait holds 1 to 500 characters")
        return text
    if isinstance(value, list | tuple):
        if len(value) > 100:
            raise ValueError("a list trait holds at most 100 texts")
        items = []
        for item in value:
            if not isinstance(item, str) or not 1 <= len(item.strip()) <= 200:
                raise ValueError("a list trait holds texts of 1 to 200 characters")
            items.append(_no_control_characters(item.strip()))
        return items
    kind = type(value).__name__
    raise ValueError(f"a trait is text, a whole number, true/false, a list of texts or null, not {kind}")


#: A profile trait's value: text, a whole number, a flag, or a list of texts (None removes the trait).
TraitValue = Annotated[
    Any,
    AfterValidator(_check_trait_value),
    WithJsonSchema({
        "anyOf": [
            {"type": "string", "minLength": 1, "maxLength": 500},
            {"type": "integer"},
            {"type": "boolean"},
            {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 200}, "maxItems": 100},
            {"type": "null"},
        ]
    }),
]


# -- consent and deliverability ------------------------------------------------------------------------


class ConsentChannel(StrEnum):
    """A channel a party may consent to be contacted on."""

    EMAIL = "email"
    NEWSLETTER = "newsletter"
    PHONE = "phone"
    SMS = "sms"


class ConsentStatus(StrEnum):
    """What a consent ledger entry says about its channel."""

    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


class LawfulBasis(StrEnum):
    """The lawful basis for processing a subscription rests on (GDPR article 6(1))."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"


class AddressKind(StrEnum):
    """What a channel reaches: e-mail and newsletter an e-mail address, phone and sms a phone number."""

    EMAIL = "email"
    PHONE = "phone"


class DeliveryOutcome(StrEnum):
    """What happened to one message sent to an address."""

    DELIVERED = "delivered"
    SOFT_BOUNCE = "soft_bounce"
    HARD_BOUNCE = "hard_bounce"


#: Where a consent or delivery report came from (a form, a mail tool, an operator): 1 to 200 characters.
Source = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), _Plain]

#: What proves a consent entry (the form's text, a recording's reference): 1 to 2,000 characters.
Evidence = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), _Text]

#: An external system's id for the event it reports; a second report with the same id changes nothing.
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), _Plain]

#: A code a sending tool reported for a message (``"550 5.1.1"``, a vendor's ``"mailbox_full"``).
RawCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), _Plain]
