"""Frozen value types shared by commands, events and read models."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

__all__ = [
    "ActorId",
    "Channel",
    "EffectiveTime",
    "PartyKind",
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

#: A profile trait's value: text, a number, a flag, or a list of texts (None removes the trait).
TraitValue = (
    Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), _Text]
    | bool
    | int
    | Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=200), _Plain]], Field(max_length=100)
    ]
    | None
)
