"""Custom field rules hold for any input: a value is canonical or refused by name, canonical forms are
fixed points, and loosening a rule never refuses what it used to accept."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.exceptions import FieldRuleViolation
from crmcore.fields import FieldDefinition, FieldKind, LabelChoice

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CHOICES = ("S.p.A.", "S.r.l.", "Software", "Hardware", "Retail")
SYNONYMS = {"Società per azioni": "S.p.A.", "Soft": "Software"}

DEFINITIONS = [
    FieldDefinition(name="note", kind=FieldKind.TEXT),
    FieldDefinition(name="code", kind=FieldKind.TEXT, pattern=r"[A-Z]{2}\d{3}", max_length=5),
    FieldDefinition(name="amount", kind=FieldKind.NUMBER),
    FieldDefinition(name="employees", kind=FieldKind.NUMBER, minimum=0, maximum=1000, required=True),
    FieldDefinition(name="founded", kind=FieldKind.DATE),
    FieldDefinition(name="renewal", kind=FieldKind.DATE, minimum=date(2000, 1, 1), maximum=date(2030, 1, 1)),
    FieldDefinition(name="partner", kind=FieldKind.BOOLEAN),
    FieldDefinition(name="industry", kind=FieldKind.CHOICE, choices=CHOICES, synonyms=SYNONYMS),
    FieldDefinition(name="interests", kind=FieldKind.MULTI_CHOICE, choices=CHOICES, synonyms=SYNONYMS),
    FieldDefinition(
        name="flag",
        kind=FieldKind.LABEL,
        choices=(LabelChoice("Urgent", "red"), LabelChoice("Watch", "#ffaa00")),
        synonyms={"ASAP": "Urgent"},
    ),
    FieldDefinition(name="linkedin", kind=FieldKind.WEB_LINK),
]

definitions = st.sampled_from(DEFINITIONS)

choice_variants = st.sampled_from([*CHOICES, *SYNONYMS, "Urgent", "ASAP", "Watch"]).flatmap(
    lambda word: st.sampled_from([word, word.upper(), word.lower(), word.replace(".", ""), f" {word} "])
)
urls = st.from_regex(
    r"https?://[a-zA-Z0-9-]{1,20}(\.[a-zA-Z]{2,6}){1,2}(/[a-zA-Z0-9._~-]{0,12}){0,3}", fullmatch=True
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.dates(),
    st.text(),
    choice_variants,
    urls,
    st.sampled_from(["yes", "sì", "No", "1", "0", "2024-02-29", " 1.50 ", "1e3", "-0"]),
)
anything = st.one_of(scalars, st.lists(st.one_of(st.text(), choice_variants), max_size=5))


def refusal(definition: FieldDefinition, value: Any) -> FieldRuleViolation | None:
    """The violation normalising ``value`` raises, or None; any other exception fails the test."""
    try:
        definition.normalise(value)
    except FieldRuleViolation as refused:
        return refused
    return None


@PROPERTY
@given(definitions, st.text())
def test_any_string_is_normalised_or_refused_by_name(definition: FieldDefinition, text: str) -> None:
    refused = refusal(definition, text)
    if refused is not None:
        assert refused.field == definition.name
        assert str(refused).startswith(f"{definition.name}: ")


@PROPERTY
@given(definitions, anything)
def test_any_value_is_normalised_or_refused_by_name(definition: FieldDefinition, value: Any) -> None:
    refused = refusal(definition, value)
    if refused is not None:
        assert refused.field == definition.name


@PROPERTY
@given(definitions, anything)
def test_normalising_a_canonical_value_returns_it_unchanged(definition: FieldDefinition, value: Any) -> None:
    try:
        canonical = definition.normalise(value)
    except FieldRuleViolation:
        return
    assert definition.normalise(canonical) == canonical


def loosen(definition: FieldDefinition, rules: dict[str, Any]) -> FieldDefinition:
    """The definition with some rules replaced, validated afresh."""
    return FieldDefinition.model_validate({**definition.model_dump(), **rules})


@st.composite
def tightened_and_loosened(draw: st.DrawFn) -> tuple[FieldDefinition, FieldDefinition]:
    """A definition with rules, and the same definition with one or more rules loosened."""
    kind = draw(st.sampled_from([FieldKind.TEXT, FieldKind.NUMBER, FieldKind.DATE, FieldKind.CHOICE]))
    required = draw(st.booleans())
    loosen_required = required and draw(st.booleans())
    if kind is FieldKind.TEXT:
        max_length = draw(st.integers(1, 20))
        pattern = draw(st.sampled_from([None, r"[a-z ]*", r"\w+"]))
        strict = FieldDefinition(
            name="f", kind=kind, required=required, max_length=max_length, pattern=pattern
        )
        loose = loosen(strict, {
            "required": required and not loosen_required,
            "max_length": max_length + draw(st.integers(0, 20)),
            "pattern": draw(st.sampled_from([pattern, None])),
        })
        return strict, loose
    if kind is FieldKind.NUMBER:
        low, high = sorted(draw(st.lists(st.decimals(-1000, 1000, places=2), min_size=2, max_size=2)))
        widen = draw(st.decimals(0, 100, places=1))
        strict = FieldDefinition(name="f", kind=kind, required=required, minimum=low, maximum=high)
        loose_low = draw(st.sampled_from([low - widen, None]))
        loose_high = draw(st.sampled_from([high + widen, None]))
        loose = loosen(strict, {
            "required": required and not loosen_required, "minimum": loose_low, "maximum": loose_high
        })
        return strict, loose
    if kind is FieldKind.DATE:
        some_dates = st.dates(date(1900, 1, 1), date(2100, 1, 1))
        start, end = sorted(draw(st.lists(some_dates, min_size=2, max_size=2)))
        days = timedelta(days=draw(st.integers(0, 400)))
        strict = FieldDefinition(name="f", kind=kind, required=required, minimum=start, maximum=end)
        loose = loosen(strict, {
            "required": required and not loosen_required, "minimum": start - days, "maximum": end + days
        })
        return strict, loose
    strict = FieldDefinition(name="f", kind=kind, required=required, choices=CHOICES, synonyms=SYNONYMS)
    extra = draw(st.lists(st.sampled_from(["Consulting", "Finance", "Farming"]), unique=True))
    loose = FieldDefinition(
        name="f",
        kind=kind,
        required=required and not loosen_required,
        choices=(*CHOICES, *extra),
        synonyms={**SYNONYMS, "Agri": "Farming"} if "Farming" in extra else SYNONYMS,
    )
    return strict, loose


values_for_loosening = st.one_of(
    st.none(),
    st.text(max_size=25),
    st.decimals(-1200, 1200, places=2).map(str),
    st.dates(date(1890, 1, 1), date(2110, 1, 1)),
    choice_variants,
)


@PROPERTY
@given(tightened_and_loosened(), values_for_loosening)
def test_a_value_accepted_before_a_rule_is_loosened_is_accepted_the_same_after(
    definitions: tuple[FieldDefinition, FieldDefinition], value: Any
) -> None:
    strict, loose = definitions
    try:
        canonical = strict.normalise(value)
    except FieldRuleViolation:
        return
    assert loose.normalise(value) == canonical


def test_a_canonical_number_is_a_plain_decimal_string() -> None:
    amount = FieldDefinition(name="amount", kind=FieldKind.NUMBER)
    canonical = amount.normalise(Decimal("1.2300E+3"))
    assert canonical == "1230"
    assert amount.normalise(canonical) == canonical
