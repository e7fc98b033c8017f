"""Identity values: who a party is, validated on construction and keyed for matching.

Every value is a frozen pydantic model that keeps what was given (normalised only where the format
demands it) for display, and exposes a ``key``: the normalised form two records share when they name the
same thing. Reading input with ``parse`` or :func:`parse_identity` raises
:class:`~crmcore.exceptions.InvalidInput` naming the field on bad input (building a value directly raises
pydantic's ``ValidationError``, also a ``ValueError``). Every value round-trips through JSON
(``model_dump(mode="json")`` then ``model_validate``) unchanged.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Annotated, Any, ClassVar, Self, TypeVar

import email_validator
import phonenumbers
import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, HttpUrl, StringConstraints, model_validator
from stdnum.eu import vat as eu_vat
from stdnum.it import iva as it_iva
from stdnum.util import get_cc_module

from crmcore._validation import invalid_input
from crmcore.exceptions import InvalidInput
from crmcore.values import utc_now

__all__ = [
    "COUNTRY_CODES",
    "BirthDate",
    "EmailAddress",
    "OrganizationName",
    "PersonName",
    "PhoneNumber",
    "PostalAddress",
    "VatNumber",
    "WebLink",
    "e164",
    "parse_identity",
]

M = TypeVar("M", bound="_IdentityValue")

_ISO_3166_ALPHA_2 = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV
    BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES
    ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE
    IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU
    NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM
    SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE
    VG VI VN VU WF WS YE YT ZA ZM ZW
"""

#: ISO 3166-1 alpha-2 country codes.
COUNTRY_CODES: frozenset[str] = frozenset(_ISO_3166_ALPHA_2.split())

_EARLIEST_BIRTH_DATE = date(1900, 1, 1)
_ITALIAN_POSTCODE = re.compile(r"[0-9]{5}")
# VAT prefixes that differ from the ISO country code (Greece uses EL).
_VAT_PREFIX = {"GR": "EL"}
_COUNTRY_OF_VAT_PREFIX = {prefix: country for country, prefix in _VAT_PREFIX.items()}


# -- text helpers -------------------------------------------------------------------------------------


def _clean_text(value: object) -> object:
    """Refuse control characters and lone surrogates, then strip and collapse whitespace."""
    if not isinstance(value, str):
        return value
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise ValueError("control characters are not allowed")
    return " ".join(value.split())


def _fold(text: str) -> str:
    """Case-fold and strip accents (NFKD, combining marks dropped), until nothing more changes."""
    for _ in range(4):
        folded = unicodedata.normalize("NFKD", text.casefold())
        folded = "".join(c for c in folded if unicodedata.category(c) != "Mn")
        if folded == text:
            break
        text = folded
    return text


# Dots and apostrophes join what they sit in ("S.p.A." is "spa", "D'Amico" is "damico").
_DROPPED = frozenset(".'`\u2019\u00b4")


def _words(text: str) -> list[str]:
    """Folded words: dots and apostrophes dropped, any other punctuation or symbol separates words."""
    folded = _fold(text)
    kept: list[str] = []
    for c in folded:
        category = unicodedata.category(c)
        if c in _DROPPED:
            continue
        kept.append(" " if category[0] in "PSZC" else c)
    return "".join(kept).split()


_Name = Annotated[str, BeforeValidator(_clean_text), StringConstraints(min_length=1, max_length=100)]
_Line = Annotated[str, BeforeValidator(_clean_text), StringConstraints(min_length=1, max_length=200)]
_Short = Annotated[str, BeforeValidator(_clean_text), StringConstraints(min_length=1, max_length=30)]


# -- the common base ------------------------------------------------------------------------------------


class _IdentityValue(BaseModel):
    """A frozen identity value, validated on construction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the field a bare string (rather than a mapping) fills, for values that have a single text form
    _text_field: ClassVar[str | None] = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if cls._text_field is not None and not isinstance(data, dict | BaseModel):
            return {cls._text_field: data}
        return data

    @classmethod
    def parse(cls, value: object, *, field: str | None = None) -> Self:
        """Validate ``value`` (the value's text form, or a mapping of its fields) or raise ``InvalidInput``.

        ``field`` names the input field; it leads the ``loc`` of every reported problem.
        """
        return parse_identity(cls, value, field=field)


def parse_identity(model: type[M], value: object, *, field: str | None = None) -> M:
    """Validate ``value`` as ``model``; raise :class:`InvalidInput` naming ``field`` if it does not fit."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except pydantic.ValidationError as error:
        refused = invalid_input(error, prefix=f"{field}: " if field else "")
        if field:
            refused.errors = [{**e, "loc": (field, *e["loc"])} for e in refused.errors]
        raise refused from None


# -- the values -------------------------------------------------------------------------------------------


class EmailAddress(_IdentityValue):
    """An e-mail address, syntax checked (no DNS look-ups) and normalised (domain lower-cased, IDNA)."""

    _text_field: ClassVar[str | None] = "address"

    address: str

    @pydantic.field_validator("address", mode="before")
    @classmethod
    def _normalised(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return email_validator.validate_email(value, check_deliverability=False).normalized

    @property
    def key(self) -> str:
        """The lower-cased ASCII form (internationalised domains in IDNA) used for matching."""
        checked = email_validator.validate_email(self.address, check_deliverability=False)
        return (checked.ascii_email or checked.normalized).lower()

    def __str__(self) -> str:
        return self.address


class PhoneNumber(_IdentityValue):
    """A valid phone number, stored in E.164 form; text without a country code is read in a default region."""

    _text_field: ClassVar[str | None] = "e164"
    default_region: ClassVar[str] = "IT"

    e164: str

    @pydantic.field_validator("e164", mode="before")
    @classmethod
    def _in_e164(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return e164(value, cls.default_region)

    @classmethod
    def parse(cls, value: object, region: str = "IT", *, field: str | None = None) -> Self:
        """Read ``value``; a number without ``+`` and country code is read as dialled in ``region``."""
        if isinstance(value, str):
            try:
                value = {"e164": e164(value, region)}
            except ValueError as error:
                problem = {"loc": (field,) if field else (), "msg": str(error), "type": "value_error"}
                label = f"{field}: " if field else ""
                raise InvalidInput(f"{label}invalid {cls.__name__}: {error}", [problem]) from None
        return parse_identity(cls, value, field=field)

    @property
    def key(self) -> str:
        """The E.164 form."""
        return self.e164

    @property
    def international(self) -> str:
        """The number for display, e.g. ``+39 06 1234 5678``."""
        return phonenumbers.format_number(
            phonenumbers.parse(self.e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )

    def __str__(self) -> str:
        return self.e164


def e164(text: str, region: str = "IT") -> str:
    """``text`` as an E.164 phone number (read as dialled in ``region``); raises ``ValueError``."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"not a phone number: {error._msg}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class PersonName(_IdentityValue):
    """A person's given and family names, stripped and with whitespace collapsed."""

    given_name: _Name
    family_name: _Name

    @property
    def display(self) -> str:
        """``given family``, as given."""
        return f"{self.given_name} {self.family_name}"

    @property
    def key(self) -> str:
        """``family given``, case-folded, accents and punctuation stripped."""
        return " ".join([*_words(self.family_name), *_words(self.given_name)])

    def __str__(self) -> str:
        return self.display


# Legal forms, as folded words, and the word each folds to; only trailing legal forms are folded.
_LEGAL_FORMS: dict[tuple[str, ...], str] = {
    ("spa",): "spa",
    ("s", "p", "a"): "spa",
    ("sapa",): "sapa",
    ("s", "a", "p", "a"): "sapa",
    ("srl",): "srl",
    ("s", "r", "l"): "srl",
    ("srls",): "srls",
    ("s", "r", "l", "s"): "srls",
    ("snc",): "snc",
    ("s", "n", "c"): "snc",
    ("sas",): "sas",
    ("s", "a", "s"): "sas",
    ("sa",): "sa",
    ("s", "a"): "sa",
    ("ltd",): "ltd",
    ("limited",): "ltd",
    ("plc",): "plc",
    ("gmbh",): "gmbh",
    ("g", "m", "b", "h"): "gmbh",
    ("inc",): "inc",
    ("incorporated",): "inc",
    ("llc",): "llc",
    ("l", "l", "c"): "llc",
    ("corp",): "corp",
    ("corporation",): "corp",
    ("bv",): "bv",
    ("b", "v"): "bv",
    ("nv",): "nv",
    ("n", "v"): "nv",
    ("ag",): "ag",
    ("a", "g"): "ag",
    ("sarl",): "sarl",
    ("s", "a", "r", "l"): "sarl",
    ("sl",): "sl",
    ("s", "l"): "sl",
    ("oy",): "oy",
    ("ab",): "ab",
    ("as",): "as",
    ("aps",): "aps",
}
_LONGEST_LEGAL_FORM = max(len(words) for words in _LEGAL_FORMS)


def _fold_legal_form(words: list[str]) -> list[str]:
    for size in range(min(_LONGEST_LEGAL_FORM, len(words) - 1), 0, -1):
        canonical = _LEGAL_FORMS.get(tuple(words[-size:]))
        if canonical is not None:
            return [*words[:-size], canonical]
    return words


class OrganizationName(_IdentityValue):
    """An organisation's name, kept as given (whitespace collapsed) for display."""

    _text_field: ClassVar[str | None] = "name"

    name: _Line

    @pydantic.field_validator("name")
    @classmethod
    def _has_letters_or_digits(cls, value: str) -> str:
        if not _words(value):
            raise ValueError("a name needs at least one letter or digit")
        return value

    @property
    def key(self) -> str:
        """Case-folded, accents and punctuation stripped, a trailing legal form folded (``acme spa``)."""
        return " ".join(_fold_legal_form(_words(self.name)))

    def __str__(self) -> str:
        return self.name


class BirthDate(_IdentityValue):
    """A date of birth: not in the future, not before 1900-01-01."""

    _text_field: ClassVar[str | None] = "value"

    value: date

    @pydantic.field_validator("value")
    @classmethod
    def _plausible(cls, value: date) -> date:
        if value < _EARLIEST_BIRTH_DATE:
            raise ValueError("a birth date cannot be before 1900-01-01")
        if value > utc_now().date():
            raise ValueError("a birth date cannot be in the future")
        return value

    @property
    def key(self) -> str:
        """The ISO date."""
        return self.value.isoformat()

    def __str__(self) -> str:
        return self.key


def _country_code(value: object) -> object:
    if not isinstance(value, str):
        return value
    code = value.strip().upper()
    if code not in COUNTRY_CODES:
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return code


_Country = Annotated[str, BeforeValidator(_country_code)]


class PostalAddress(_IdentityValue):
    """A postal address; ``country`` is an ISO 3166-1 alpha-2 code, Italian postcodes have five digits."""

    country: _Country
    street: _Line
    street_number: _Short | None = None
    lines: tuple[_Line, ...] = ()
    postcode: _Short
    locality: _Line
    province: _Line | None = None

    @pydantic.field_validator("postcode")
    @classmethod
    def _postcode_fits_country(cls, value: str, info: pydantic.ValidationInfo) -> str:
        if info.data.get("country") == "IT" and not _ITALIAN_POSTCODE.fullmatch(value):
            raise ValueError("an Italian postcode (CAP) has five digits")
        return value

    @property
    def key(self) -> tuple[str, ...]:
        """Country, postcode, locality, street, number and extra lines, each folded."""
        parts = [
            self.country,
            "".join(_words(self.postcode)),
            " ".join(_words(self.locality)),
            " ".join(_words(self.street)),
            " ".join(_words(self.street_number or "")),
            *(" ".join(_words(line)) for line in self.lines),
        ]
        return tuple(parts)


class WebLink(_IdentityValue):
    """An ``http`` or ``https`` URL."""

    _text_field: ClassVar[str | None] = "url"

    url: HttpUrl

    @property
    def key(self) -> str:
        """Lower-cased host and path, without a trailing slash."""
        host = (self.url.host or "").lower()
        return f"{host}{(self.url.path or '').rstrip('/')}"

    def __str__(self) -> str:
        return str(self.url)


class VatNumber(_IdentityValue):
    """A VAT number with its country, checksum verified; ``number`` is the compact form without prefix.

    Italian numbers (partita IVA) are checked with ``stdnum.it.iva``, other EU numbers with
    ``stdnum.eu.vat``, other countries with their ``stdnum`` VAT module where there is one.
    """

    country: _Country
    number: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            compact = "".join(data.split()).upper()
            prefix = compact[:2]
            return {"country": _COUNTRY_OF_VAT_PREFIX.get(prefix, prefix), "number": compact[2:]}
        return data

    @model_validator(mode="after")
    def _checksum(self) -> Self:
        object.__setattr__(self, "number", _compact_vat(self.country, self.number))
        return self

    @property
    def prefix(self) -> str:
        """The VAT prefix of the country (``EL`` for Greece, otherwise the country code)."""
        return _VAT_PREFIX.get(self.country, self.country)

    @property
    def key(self) -> str:
        """Prefix and compact number, e.g. ``IT01114601006``."""
        return f"{self.prefix}{self.number}"

    def __str__(self) -> str:
        return self.key


def _compact_vat(country: str, number: str) -> str:
    prefix = _VAT_PREFIX.get(country, country)
    if country == "IT":
        return str(it_iva.validate(number))
    if prefix.lower() in eu_vat.MEMBER_STATES:
        compact = str(eu_vat.validate(prefix + number))
        return compact[len(prefix) :]
    module = get_cc_module(country.lower(), "vat")
    if module is None:
        raise ValueError(f"no VAT number check is known for country {country}")
    return str(module.validate(number))
