"""Custom fields: per-installation definitions and the rules every value must pass.

A :class:`FieldDefinition` says what one custom field may hold; :meth:`FieldDefinition.normalise` turns a
value given by a user or an import into its one canonical, JSON-native form, or refuses it with a
:class:`~crmcore.exceptions.FieldRuleViolation` that names the field and, for fields with a list of allowed
values, suggests the closest one. A :class:`FieldSet` holds an installation's definitions and checks a whole
set of values at once.

Canonical forms, by kind:

========================  =============================================================================
kind                      canonical value
========================  =============================================================================
``text``                  ``str``, stripped, runs of whitespace collapsed to one space
``number``                ``str``: the :class:`~decimal.Decimal` in plain notation, trailing zeros
                          dropped (``"1.50"`` → ``"1.5"``, ``"1e2"`` → ``"100"``); a string keeps it exact
``date``                  ``str``: the ISO date, ``YYYY-MM-DD``
``boolean``               ``bool``; also from yes/no, sì/si, true/false, 1/0 (any case)
``choice`` / ``label``    ``str``: one of the definition's canonical values
``multi_choice``          ``list[str]`` of canonical values, duplicates dropped, first order kept
``web_link``              ``str``: the ``http``/``https`` URL as pydantic's ``HttpUrl`` writes it
========================  =============================================================================

A choice matches exactly, through a synonym, or ignoring case, accents, punctuation and spaces: with the
choice ``"S.p.A."``, the inputs ``"SPA"``, ``"spa"``, ``"S.p.A"`` and ``"s.p.a."`` all become ``"S.p.A."``.
``None``, a blank string and an empty list mean "no value", which is allowed unless the field is required.

This module is pure: it stores nothing. Defining a field is a pydantic model, so a bad definition raises
:class:`pydantic.ValidationError` (a ``ValueError``) like every other crmcore input model.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass
from rapidfuzz import fuzz, process

from crmcore.exceptions import FieldRuleViolation, InvalidInput
from crmcore.values import Channel

__all__ = [
    "PALETTE",
    "STANDARD_PROFILE",
    "FieldDefinition",
    "FieldKind",
    "FieldSet",
    "FieldValue",
    "LabelChoice",
]

#: A canonical field value, as :meth:`FieldDefinition.normalise` returns it (JSON-native).
FieldValue = str | bool | list[str] | None

#: The named colours a label may use instead of a ``#rrggbb`` hex code.
PALETTE = frozenset({
    "black", "blue", "brown", "green", "grey", "orange", "pink", "purple", "red", "teal", "white", "yellow",
})

#: The lowest score (0-100, :func:`rapidfuzz.fuzz.ratio` on folded text) at which a value is suggested.
SUGGESTION_CUTOFF = 60.0

#: Numbers keep at most this many decimal places and this many digits before the point.
_MAX_DECIMAL_PLACES = 20
_MAX_INTEGER_DIGITS = 30

_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F))
_CONTROL_IN_TEXT = _CONTROL - {"\t", "\n", "\r"}
_TRUE = frozenset({"yes", "sì", "si", "true", "1"})
_FALSE = frozenset({"no", "false", "0"})
_URL = pydantic.TypeAdapter(pydantic.HttpUrl)
_DISPLAY_SUGGESTIONS = 10


class FieldKind(StrEnum):
    """What a custom field holds."""

    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    LABEL = "label"
    WEB_LINK = "web_link"


_CHOICE_KINDS = frozenset({FieldKind.CHOICE, FieldKind.MULTI_CHOICE, FieldKind.LABEL})
_RANGE_KINDS = frozenset({FieldKind.NUMBER, FieldKind.DATE})


def _fold(text: str) -> str:
    """The matching key of a choice: case-folded, accents dropped, letters and digits only."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


def _clean_choice(text: str) -> str:
    """A canonical value or synonym as defined: whitespace collapsed, printable, with letters or digits."""
    text = " ".join(text.split())
    if not _CONTROL.isdisjoint(text):
        raise ValueError("control characters are not allowed")
    if not _fold(text):
        raise ValueError(f"{text!r} has no letters or digits to match on")
    return text


@dataclass(frozen=True)
class LabelChoice:
    """One allowed value of a ``label`` field and its colour: ``#rrggbb`` or a :data:`PALETTE` name."""

    value: str
    colour: str

    @field_validator("value")
    @classmethod
    def _check_value(cls, value: str) -> str:
        return _clean_choice(value)

    @field_validator("colour")
    @classmethod
    def _check_colour(cls, colour: str) -> str:
        colour = colour.strip().lower()
        if colour in PALETTE or _HEX_COLOUR.fullmatch(colour):
            return colour
        raise ValueError(f"a colour is #rrggbb or one of {', '.join(sorted(PALETTE))}, not {colour!r}")


class FieldDefinition(BaseModel):
    """The rules of one custom field.

    ``choices`` are the canonical values of ``choice``, ``multi_choice`` and ``label`` fields (for ``label``,
    each a :class:`LabelChoice` with its colour). ``synonyms`` map a variant to a canonical value; they and
    the choices match ignoring case, punctuation and spaces. ``minimum``/``maximum`` bound ``number``
    (``Decimal``) and ``date`` (``date``) fields, inclusive; ``pattern`` (a regex the whole text must match)
    and ``max_length`` constrain ``text``. A rule that does not apply to the kind is refused.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="a lower-case identifier, the key the value is stored under")
    kind: FieldKind
    label: str = Field(default="", description="the name shown to users; defaults to the name, readable")
    required: bool = False
    choices: tuple[LabelChoice | str, ...] = ()
    synonyms: dict[str, str] = Field(default_factory=dict)
    minimum: Decimal | date | None = None
    maximum: Decimal | date | None = None
    pattern: str | None = None
    max_length: int | None = Field(default=None, ge=1)
    section: Literal["custom", "profile"] = Field(
        default="custom",
        description="custom: a field of the installation's own; profile: a segmentation-profile trait",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise ValueError("a field name is a lower-case identifier: a-z, then a-z, 0-9 or _, at most 64")
        return name

    @field_validator("label")
    @classmethod
    def _check_label(cls, label: str) -> str:
        label = " ".join(label.split())
        if not _CONTROL.isdisjoint(label) or len(label) > 200:
            raise ValueError("a label is at most 200 printable characters")
        return label

    @model_validator(mode="after")
    def _check_rules(self) -> FieldDefinition:
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " ").capitalize())
        self._check_rules_apply()
        if self.kind in _CHOICE_KINDS:
            self._check_choices()
        if self.kind in _RANGE_KINDS:
            self._check_range()
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except (re.error, RecursionError, OverflowError) as error:
                raise ValueError(f"pattern does not compile: {error}") from None
        return self

    def _check_rules_apply(self) -> None:
        given = {
            "choices": bool(self.choices),
            "synonyms": bool(self.synonyms),
            "minimum": self.minimum is not None,
            "maximum": self.maximum is not None,
            "pattern": self.pattern is not None,
            "max_length": self.max_length is not None,
        }
        applies = {
            "choices": self.kind in _CHOICE_KINDS,
            "synonyms": self.kind in _CHOICE_KINDS,
            "minimum": self.kind in _RANGE_KINDS,
            "maximum": self.kind in _RANGE_KINDS,
            "pattern": self.kind is FieldKind.TEXT,
            "max_length": self.kind is FieldKind.TEXT,
        }
        misplaced = [rule for rule, is_given in given.items() if is_given and not applies[rule]]
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)} do(es) not apply to a {self.kind} field")

    def _check_choices(self) -> None:
        if not self.choices:
            raise ValueError(f"a {self.kind} field needs choices")
        if self.kind is FieldKind.LABEL:
            if not all(isinstance(c, LabelChoice) for c in self.choices):
                raise ValueError("each choice of a label field is a LabelChoice with a colour")
        elif not all(isinstance(c, str) for c in self.choices):
            raise ValueError(f"the choices of a {self.kind} field are plain values, without colours")
        else:
            cleaned = tuple(_clean_choice(c) for c in self.choices if isinstance(c, str))
            object.__setattr__(self, "choices", cleaned)
        owner: dict[str, str] = {}
        for value in self.values:
            key = _fold(value)
            if key in owner:
                raise ValueError(
                    f"choices {owner[key]!r} and {value!r} are the same once case and dots are ignored"
                )
            owner[key] = value
        synonyms: dict[str, str] = {}
        for variant, canonical in self.synonyms.items():
            variant = _clean_choice(variant)
            if canonical not in self.values:
                raise ValueError(f"synonym {variant!r} points to {canonical!r}, which is not a choice")
            key = _fold(variant)
            if owner.get(key, canonical) != canonical:
                raise ValueError(f"synonym {variant!r} would also match {owner[key]!r}")
            owner[key] = canonical
            synonyms[variant] = canonical
        object.__setattr__(self, "synonyms", synonyms)

    def _check_range(self) -> None:
        expected: type = Decimal if self.kind is FieldKind.NUMBER else date
        for bound in (self.minimum, self.maximum):
            if bound is None:
                continue
            if not isinstance(bound, expected) or (isinstance(bound, Decimal) and not bound.is_finite()):
                raise ValueError(f"the bounds of a {self.kind} field are {expected.__name__} values")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:  # type: ignore[operator]
            raise ValueError(f"minimum {self.minimum} is above maximum {self.maximum}")

    @property
    def values(self) -> tuple[str, ...]:
        """The canonical values of a choice, multi-choice or label field, in their defined order."""
        return tuple(c.value if isinstance(c, LabelChoice) else c for c in self.choices)

    def colour_of(self, value: str) -> str | None:
        """The colour of a label field's canonical value (None for other kinds or unknown values)."""
        for choice in self.choices:
            if isinstance(choice, LabelChoice) and choice.value == value:
                return choice.colour
        return None

    @property
    def _lookup(self) -> dict[str, str]:
        """Folded choice or synonym → canonical value (built per call: a cache would survive model_copy)."""
        lookup = {_fold(value): value for value in self.values}
        lookup.update({_fold(variant): canonical for variant, canonical in self.synonyms.items()})
        return lookup

    @property
    def _compiled(self) -> re.Pattern[str] | None:
        """The compiled pattern (the ``re`` module keeps recently compiled patterns)."""
        return None if self.pattern is None else re.compile(self.pattern)

    def normalise(self, value: object) -> FieldValue:
        """The canonical, JSON-native form of ``value`` (see the module's table), or ``None`` for no value.

        Raises :class:`FieldRuleViolation` naming this field if the value breaks a rule, with a
        ``suggestion`` when a choice field is given something close to an allowed value.
        """
        if isinstance(value, str) and not value.strip():
            value = None
        if isinstance(value, list | tuple) and not value and self.kind is FieldKind.MULTI_CHOICE:
            value = None
        if value is None:
            if self.required:
                raise self._violation("a value is required", "missing")
            return None
        match self.kind:
            case FieldKind.TEXT:
                return self._text(value)
            case FieldKind.NUMBER:
                return self._number(value)
            case FieldKind.DATE:
                return self._date(value)
            case FieldKind.BOOLEAN:
                return self._boolean(value)
            case FieldKind.CHOICE | FieldKind.LABEL:
                return self._choice(value)
            case FieldKind.MULTI_CHOICE:
                return self._multi_choice(value)
            case FieldKind.WEB_LINK:
                return self._web_link(value)
        raise AssertionError(f"unhandled field kind {self.kind}")  # pragma: no cover

    def _violation(self, problem: str, error_type: str, suggestion: str | None = None) -> FieldRuleViolation:
        message = f"{self.name}: {problem}"
        if suggestion is not None:
            message += f"; did you mean {suggestion!r}?"
        error: dict[str, Any] = {"loc": (self.name,), "msg": message, "type": error_type}
        if suggestion is not None:
            error["ctx"] = {"suggestion": suggestion}
        return FieldRuleViolation(message, [error], field=self.name, suggestion=suggestion)

    def _wrong_type(self, value: object, expected: str) -> FieldRuleViolation:
        return self._violation(f"expects {expected}, not {type(value).__name__}", "wrong_type")

    def _text(self, value: object) -> str:
        if not isinstance(value, str):
            raise self._wrong_type(value, "text")
        text = " ".join(value.split())
        if not _CONTROL_IN_TEXT.isdisjoint(text):
            raise self._violation("control characters are not allowed", "control_characters")
        if self.max_length is not None and len(text) > self.max_length:
            raise self._violation(f"holds at most {self.max_length} characters, not {len(text)}", "too_long")
        if self._compiled is not None and not self._compiled.fullmatch(text):
            raise self._violation(f"{text!r} does not match the pattern {self.pattern!r}", "pattern_mismatch")
        return text

    def _number(self, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            raise self._wrong_type(value, "a number")
        try:
            number = Decimal(value.strip()) if isinstance(value, str) else Decimal(str(value))
        except (InvalidOperation, ValueError):
            raise self._violation(f"{value!r} is not a number", "not_a_number") from None
        if not number.is_finite():
            raise self._violation(f"{value!r} is not a finite number", "not_a_number")
        if number.is_zero():
            number = Decimal(0)
        if number.adjusted() >= _MAX_INTEGER_DIGITS:
            raise self._violation(f"{value!r} has more than {_MAX_INTEGER_DIGITS} digits", "out_of_range")
        number = number.normalize()
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -_MAX_DECIMAL_PLACES:
            raise self._violation(
                f"{value!r} has more than {_MAX_DECIMAL_PLACES} decimal places", "out_of_range"
            )
        self._check_bounds(number, str(value))
        return format(number, "f")

    def _date(self, value: object) -> str:
        if isinstance(value, date) and not isinstance(value, datetime):
            day = value
        elif isinstance(value, str):
            try:
                day = date.fromisoformat(value.strip())
            except ValueError:
                raise self._violation(f"{value!r} is not an ISO date (YYYY-MM-DD)", "not_a_date") from None
        else:
            raise self._wrong_type(value, "a date")
        self._check_bounds(day, day.isoformat())
        return day.isoformat()

    def _check_bounds(self, value: Decimal | date, shown: str) -> None:
        if self.minimum is not None and value < self.minimum:  # type: ignore[operator]
            raise self._violation(f"{shown} is below the minimum {self.minimum}", "out_of_range")
        if self.maximum is not None and value > self.maximum:  # type: ignore[operator]
            raise self._violation(f"{shown} is above the maximum {self.maximum}", "out_of_range")

    def _boolean(self, value: object) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            word = value.strip().casefold()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise self._violation(f"{value!r} is not yes/no, true/false or 1/0", "not_a_boolean")
        raise self._wrong_type(value, "yes or no")

    def _choice(self, value: object) -> str:
        if not isinstance(value, str):
            raise self._wrong_type(value, "one of the allowed values")
        text = value.strip()
        if text in self.values:
            return text
        canonical = self._lookup.get(_fold(text))
        if canonical is not None:
            return canonical
        suggestion = self._closest(text)
        if suggestion is None and len(self.values) <= _DISPLAY_SUGGESTIONS:
            allowed = ", ".join(repr(v) for v in self.values)
            raise self._violation(f"{value!r} is not an allowed value (allowed: {allowed})", "not_allowed")
        raise self._violation(f"{value!r} is not an allowed value", "not_allowed", suggestion)

    def _closest(self, text: str) -> str | None:
        """The canonical value whose spelling (or a synonym's) is closest to ``text``, if close enough."""
        candidates = [*self.values, *self.synonyms]
        found = process.extractOne(
            text, candidates, scorer=fuzz.ratio, processor=_fold, score_cutoff=SUGGESTION_CUTOFF
        )
        if found is None:
            return None
        return self._lookup[_fold(found[0])]

    def _multi_choice(self, value: object) -> list[str]:
        if not isinstance(value, list | tuple):
            raise self._wrong_type(value, "a list of allowed values")
        chosen: list[str] = []
        for item in value:
            canonical = self._choice(item)
            if canonical not in chosen:
                chosen.append(canonical)
        return chosen

    def _web_link(self, value: object) -> str:
        if not isinstance(value, str):
            raise self._wrong_type(value, "a web link")
        try:
            url = _URL.validate_python(value.strip())
        except pydantic.ValidationError:
            raise self._violation(f"{value!r} is not an http(s) web link", "not_a_web_link") from None
        return str(url)


class FieldSet(Mapping[str, FieldDefinition]):
    """An installation's custom fields, by name; checks a party's whole set of field values at once."""

    def __init__(self, definitions: Iterable[FieldDefinition] = (), *, version: int = 0) -> None:
        #: The field catalog's version these definitions are read at (0: no catalog, or not from one).
        self.version = version
        self._definitions: dict[str, FieldDefinition] = {}
        for definition in definitions:
            if definition.name in self._definitions:
                raise InvalidInput(f"field {definition.name!r} is defined twice")
            self._definitions[definition.name] = definition

    def __getitem__(self, name: str) -> FieldDefinition:
        return self._definitions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._definitions)

    def __len__(self) -> int:
        return len(self._definitions)

    def __repr__(self) -> str:
        return f"FieldSet({list(self._definitions.values())!r}, version={self.version})"

    def section(self, section: Literal["custom", "profile"]) -> FieldSet:
        """The definitions of one section only (custom fields, or segmentation-profile traits)."""
        return FieldSet((d for d in self._definitions.values() if d.section == section), version=self.version)

    def violations(self, values: Mapping[str, object], *, partial: bool = False) -> list[FieldRuleViolation]:
        """Every problem with ``values`` (name → value), without raising: unknown fields, values that break
        their field's rules, and (unless ``partial``, for an update that leaves other fields alone) required
        fields that are missing. Use it to scan stored values against rules that have since been tightened.
        """
        problems: list[FieldRuleViolation] = []
        for name, value in values.items():
            definition = self._definitions.get(name)
            if definition is None:
                message = f"{name}: is not a defined field"
                error = {"loc": (name,), "msg": message, "type": "unknown_field"}
                problems.append(FieldRuleViolation(message, [error], field=name))
                continue
            try:
                definition.normalise(value)
            except FieldRuleViolation as problem:
                problems.append(problem)
        if not partial:
            for name, definition in self._definitions.items():
                if definition.required and name not in values:
                    problems.append(definition._violation("a value is required", "missing"))
        return problems

    def validate(self, values: Mapping[str, object], *, partial: bool = False) -> dict[str, FieldValue]:
        """The canonical form of every value in ``values``; raise :class:`InvalidInput` listing every problem.

        A single broken value raises its :class:`FieldRuleViolation` (an ``InvalidInput``); several
        problems raise one ``InvalidInput`` whose ``errors`` hold one entry per problem.
        """
        problems = self.violations(values, partial=partial)
        if len(problems) == 1:
            raise problems[0]
        if problems:
            errors = [error for problem in problems for error in problem.errors]
            summary = "; ".join(str(problem) for problem in problems)
            raise InvalidInput(f"{len(problems)} custom field problems: {summary}", errors)
        return {name: self._definitions[name].normalise(value) for name, value in values.items()}


def _standard_profile() -> tuple[FieldDefinition, ...]:
    return (
        FieldDefinition(name="interests", kind=FieldKind.TEXT, max_length=500, section="profile",
                        label="Interests"),
        FieldDefinition(name="behaviours", kind=FieldKind.TEXT, max_length=500, section="profile",
                        label="Behaviours"),
        FieldDefinition(
            name="preferred_channels", kind=FieldKind.MULTI_CHOICE, section="profile",
            label="Preferred channels", choices=tuple(channel.value for channel in Channel),
            synonyms={"e-mail": "email", "mail": "email", "telephone": "phone", "call": "phone",
                      "form": "web_form", "social media": "social", "in person": "meeting"},
        ),
        FieldDefinition(name="opinions", kind=FieldKind.TEXT, max_length=500, section="profile",
                        label="Opinions"),
    )


#: Ready-made definitions of the four standard segmentation-profile traits: free-text ``interests``,
#: ``behaviours`` and ``opinions`` (at most 500 characters), and ``preferred_channels``, a multi-choice of
#: the :class:`~crmcore.values.Channel` values. Adopt them with :meth:`crmcore.CRM.adopt_standard_profile`.
STANDARD_PROFILE: tuple[FieldDefinition, ...] = _standard_profile()
