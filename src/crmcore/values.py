"""Frozen value types shared by commands, events and read models."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

__all__ = [
    "CURRENCIES",
    "MINOR_UNITS",
    "ActorId",
    "AddressKind",
    "Channel",
    "ConsentChannel",
    "ConsentStatus",
    "Currency",
    "DeliveryOutcome",
    "EffectiveTime",
    "Evidence",
    "ExternalId",
    "LawfulBasis",
    "Money",
    "PartyKind",
    "Probability",
    "RawCode",
    "Source",
    "Stage",
    "minor_unit",
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


# -- campaigns and engagement ---------------------------------------------------------------------------


class CampaignChannel(StrEnum):
    """How a campaign reaches its audience: an e-mail newsletter, or telemarketing calls."""

    NEWSLETTER = "newsletter"
    TELEMARKETING = "telemarketing"


#: The consent channel each campaign channel needs.
CAMPAIGN_CONSENT: dict[CampaignChannel, ConsentChannel] = {
    CampaignChannel.NEWSLETTER: ConsentChannel.NEWSLETTER,
    CampaignChannel.TELEMARKETING: ConsentChannel.PHONE,
}


class CampaignStatus(StrEnum):
    """Where a campaign is in its lifecycle: draft -> scheduled -> running -> completed, or cancelled."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class EngagementKind(StrEnum):
    """What a report from a mail tool or a telephone system says happened to one recipient."""

    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    SOFT_BOUNCE = "soft_bounce"
    HARD_BOUNCE = "hard_bounce"
    UNSUBSCRIBED = "unsubscribed"
    COMPLAINT = "complaint"
    CALLED = "called"


class CallOutcome(StrEnum):
    """How a telemarketing call went. ``no_answer`` and ``call_back`` leave the call list entry open."""

    REACHED = "reached"
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"
    CALL_BACK = "call_back"
    INTERESTED = "interested"
    NOT_INTERESTED = "not_interested"


#: Call outcomes after which the party need not be called again in that campaign.
FINAL_CALL_OUTCOMES = frozenset({
    CallOutcome.REACHED, CallOutcome.WRONG_NUMBER, CallOutcome.INTERESTED, CallOutcome.NOT_INTERESTED,
})


class ExclusionReason(StrEnum):
    """Why the audience policy left a segment member out of a campaign channel (checked in this order)."""

    NO_CONSENT = "no_consent"
    UNSUBSCRIBED = "unsubscribed"
    NO_ADDRESS = "no_address"
    SUPPRESSED = "suppressed"
    INACTIVE = "inactive"
    OPEN_NEGOTIATION = "open_negotiation"
    DUPLICATE = "duplicate"


# -- money and probability ------------------------------------------------------------------------------

#: Active ISO 4217 alpha-3 currency codes.
CURRENCIES = frozenset({
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
    "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF",
    "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB",
    "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG",
    "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF",
    "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA",
    "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO",
    "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN",
    "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX",
    "USD", "UYU", "UZS", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW",
    "ZWL",
})

#: Currencies whose minor unit is not the cent (ISO 4217's "minor unit" column); every other has 2 decimals.
MINOR_UNITS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF",
         "XOF", "XPF"),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def minor_unit(currency: str) -> int:
    """How many decimals an amount in ``currency`` keeps (ISO 4217): 2 unless the table says otherwise."""
    return MINOR_UNITS.get(currency, 2)


def _currency(value: str) -> str:
    code = value.strip().upper()
    if code not in CURRENCIES:
        raise ValueError(f"not an ISO 4217 currency code: {value!r}")
    return code


#: An ISO 4217 alpha-3 currency code, upper-cased (``"eur"`` reads as ``"EUR"``).
Currency = Annotated[str, AfterValidator(_currency)]

#: A probability in whole percent, 0 to 100.
Probability = Annotated[int, Field(ge=0, le=100, strict=True)]


class Money(BaseModel):
    """A non-negative amount in one currency, kept to the currency's minor unit (never a float).

    Adding or subtracting amounts in different currencies raises
    :class:`~crmcore.exceptions.CurrencyMismatch`; so does a subtraction that would go below zero
    (:class:`~crmcore.exceptions.InvalidInput`). In events it is stored as strings:
    ``{"amount": "1234.50", "currency": "EUR"}``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=24)]
    currency: Currency

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("give an amount as a Decimal, an int or a string, never a float")
        return value

    @model_validator(mode="after")
    def _quantised(self) -> Money:
        exponent = Decimal(1).scaleb(-minor_unit(self.currency))
        try:
            quantised = self.amount.quantize(exponent, rounding=ROUND_HALF_EVEN)
        except InvalidOperation:
            raise ValueError("the amount is too large") from None
        # The model is frozen; this is its own validation settling the amount's form.
        self.__dict__["amount"] = abs(quantised) if quantised.is_zero() else quantised
        return self

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        """``Money.of("1234.5", "eur")``: validated, raising :class:`~crmcore.exceptions.InvalidInput`."""
        from crmcore._validation import validate

        return validate(cls, {"amount": amount, "currency": currency})

    def stored(self) -> dict[str, str]:
        """The form kept in events: amount and currency as strings."""
        return {"amount": str(self.amount), "currency": self.currency}

    def _same_currency(self, other: Money) -> None:
        from crmcore.exceptions import CurrencyMismatch

        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        from crmcore.exceptions import InvalidInput

        self._same_currency(other)
        if other.amount > self.amount:
            raise InvalidInput(f"{self} minus {other} would be negative")
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount >= other.amount

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
