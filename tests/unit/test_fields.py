"""Custom field rules: each kind's canonical form, refusals that name the field, and definition checks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pydantic
import pytest

from crmcore.exceptions import FieldRuleViolation, InvalidInput
from crmcore.fields import FieldDefinition, FieldKind, FieldSet, LabelChoice


def industry(**rules: object) -> FieldDefinition:
    return FieldDefinition(
        name="industry", kind=FieldKind.CHOICE, choices=("Software", "Hardware", "Retail"), **rules
    )


def legal_form() -> FieldDefinition:
    return FieldDefinition(
        name="legal_form",
        kind=FieldKind.CHOICE,
        choices=("S.p.A.", "S.r.l.", "Ltd"),
        synonyms={"Società per azioni": "S.p.A.", "Limited": "Ltd"},
    )


# text


def test_text_is_stripped_and_its_whitespace_collapsed() -> None:
    note = FieldDefinition(name="note", kind=FieldKind.TEXT)
    assert note.normalise("  key \t account\n  in Milan ") == "key account in Milan"


def test_text_longer_than_max_length_is_refused() -> None:
    code = FieldDefinition(name="code", kind=FieldKind.TEXT, max_length=3)
    with pytest.raises(FieldRuleViolation, match="code: holds at most 3 characters"):
        code.normalise("ABCD")


def test_text_must_match_the_whole_pattern() -> None:
    code = FieldDefinition(name="code", kind=FieldKind.TEXT, pattern=r"[A-Z]{2}\d{3}")
    assert code.normalise(" AB123 ") == "AB123"
    with pytest.raises(FieldRuleViolation, match="does not match the pattern"):
        code.normalise("AB1234")


def test_text_with_control_characters_is_refused() -> None:
    note = FieldDefinition(name="note", kind=FieldKind.TEXT)
    with pytest.raises(FieldRuleViolation, match="control characters"):
        note.normalise("a\x00b")


def test_a_number_given_to_a_text_field_is_refused() -> None:
    note = FieldDefinition(name="note", kind=FieldKind.TEXT)
    with pytest.raises(FieldRuleViolation, match="note: expects text, not int"):
        note.normalise(12)


# number


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("1.50", "1.5"), (" 42 ", "42"), (7, "7"), (Decimal("1e2"), "100"), (2.5, "2.5"), ("-0.0", "0")],
)
def test_a_number_becomes_its_plain_decimal_string(given: object, canonical: str) -> None:
    amount = FieldDefinition(name="amount", kind=FieldKind.NUMBER)
    assert amount.normalise(given) == canonical


@pytest.mark.parametrize("given", ["twelve", "NaN", "Infinity", True, "1e40"])
def test_what_is_not_a_usable_number_is_refused(given: object) -> None:
    amount = FieldDefinition(name="amount", kind=FieldKind.NUMBER)
    with pytest.raises(FieldRuleViolation, match="amount: "):
        amount.normalise(given)


def test_a_number_outside_its_range_is_refused() -> None:
    employees = FieldDefinition(name="employees", kind=FieldKind.NUMBER, minimum=1, maximum=500)
    assert employees.normalise("500") == "500"
    with pytest.raises(FieldRuleViolation, match="501 is above the maximum 500"):
        employees.normalise(501)
    with pytest.raises(FieldRuleViolation, match="0 is below the minimum 1"):
        employees.normalise(0)


# date


def test_a_date_becomes_its_iso_string() -> None:
    founded = FieldDefinition(name="founded", kind=FieldKind.DATE)
    assert founded.normalise(date(1998, 9, 4)) == "1998-09-04"
    assert founded.normalise(" 1998-09-04 ") == "1998-09-04"


def test_a_moment_is_refused_by_a_date_field() -> None:
    founded = FieldDefinition(name="founded", kind=FieldKind.DATE)
    with pytest.raises(FieldRuleViolation, match="founded: expects a date, not datetime"):
        founded.normalise(datetime(1998, 9, 4, 12, 0, tzinfo=UTC))


def test_a_date_that_is_not_iso_is_refused() -> None:
    founded = FieldDefinition(name="founded", kind=FieldKind.DATE)
    with pytest.raises(FieldRuleViolation, match="is not an ISO date"):
        founded.normalise("04/09/1998")


def test_a_date_outside_its_range_is_refused() -> None:
    renewal = FieldDefinition(
        name="renewal", kind=FieldKind.DATE, minimum=date(2024, 1, 1), maximum=date(2024, 12, 31)
    )
    assert renewal.normalise("2024-06-30") == "2024-06-30"
    with pytest.raises(FieldRuleViolation, match="2025-01-01 is above the maximum 2024-12-31"):
        renewal.normalise("2025-01-01")


# boolean


@pytest.mark.parametrize("given", [True, "yes", "Sì", "si", "TRUE", "1", 1])
def test_yes_words_become_true(given: object) -> None:
    assert FieldDefinition(name="partner", kind=FieldKind.BOOLEAN).normalise(given) is True


@pytest.mark.parametrize("given", [False, "no", "False", "0", 0])
def test_no_words_become_false(given: object) -> None:
    assert FieldDefinition(name="partner", kind=FieldKind.BOOLEAN).normalise(given) is False


def test_a_boolean_field_refuses_maybe() -> None:
    with pytest.raises(FieldRuleViolation, match="partner: 'maybe' is not yes/no"):
        FieldDefinition(name="partner", kind=FieldKind.BOOLEAN).normalise("maybe")


# choice


@pytest.mark.parametrize("given", ["S.p.A.", "SPA", "spa", "S.p.A", "s.p.a.", " S. p. A. "])
def test_legal_form_variants_become_the_canonical_spa(given: str) -> None:
    assert legal_form().normalise(given) == "S.p.A."


def test_a_synonym_becomes_its_canonical_value_whatever_its_case() -> None:
    assert legal_form().normalise("SOCIETÀ PER AZIONI") == "S.p.A."


def test_accents_are_ignored_when_matching_a_choice_or_synonym() -> None:
    assert legal_form().normalise("Societa per azioni") == "S.p.A."


def test_a_misspelt_choice_is_refused_with_the_closest_allowed_value_suggested() -> None:
    with pytest.raises(FieldRuleViolation) as refused:
        industry().normalise("Sofware")
    assert str(refused.value) == "industry: 'Sofware' is not an allowed value; did you mean 'Software'?"
    assert refused.value.field == "industry"
    assert refused.value.suggestion == "Software"
    assert refused.value.errors[0]["loc"] == ("industry",)


def test_a_misspelt_synonym_suggests_its_canonical_value() -> None:
    with pytest.raises(FieldRuleViolation) as refused:
        legal_form().normalise("Limted")
    assert refused.value.suggestion == "Ltd"


def test_a_choice_far_from_every_allowed_value_lists_them_instead() -> None:
    with pytest.raises(FieldRuleViolation) as refused:
        industry().normalise("zzzz")
    assert refused.value.suggestion is None
    assert "allowed: 'Software', 'Hardware', 'Retail'" in str(refused.value)


def test_multi_choice_keeps_first_order_and_drops_duplicates() -> None:
    interests = FieldDefinition(
        name="interests", kind=FieldKind.MULTI_CHOICE, choices=("Cloud", "Security", "AI")
    )
    assert interests.normalise(["security", "Cloud", "SECURITY", "a.i."]) == ["Security", "Cloud", "AI"]


def test_multi_choice_refuses_a_bare_string() -> None:
    interests = FieldDefinition(name="interests", kind=FieldKind.MULTI_CHOICE, choices=("Cloud",))
    with pytest.raises(FieldRuleViolation, match="expects a list"):
        interests.normalise("Cloud")


def test_a_label_becomes_its_canonical_value_and_knows_its_colour() -> None:
    flag = FieldDefinition(
        name="flag",
        kind=FieldKind.LABEL,
        choices=(LabelChoice("Urgent", "Red"), LabelChoice("Watch", "#AABBCC")),
    )
    assert flag.normalise("urgent") == "Urgent"
    assert flag.colour_of("Urgent") == "red"
    assert flag.colour_of("Watch") == "#aabbcc"


# web link


def test_a_web_link_is_kept_as_an_http_url_with_its_host_lower_cased() -> None:
    profile = FieldDefinition(name="linkedin", kind=FieldKind.WEB_LINK)
    assert profile.normalise(" https://WWW.LinkedIn.com/in/ada ") == "https://www.linkedin.com/in/ada"


@pytest.mark.parametrize("given", ["linkedin/ada", "ftp://example.com/file", "https://"])
def test_what_is_not_an_http_link_is_refused(given: str) -> None:
    with pytest.raises(FieldRuleViolation, match="is not an http"):
        FieldDefinition(name="linkedin", kind=FieldKind.WEB_LINK).normalise(given)


# required and missing


@pytest.mark.parametrize("given", [None, "", "   "])
def test_no_value_is_allowed_when_the_field_is_optional(given: object) -> None:
    assert industry().normalise(given) is None


@pytest.mark.parametrize("given", [None, "  "])
def test_no_value_is_refused_when_the_field_is_required(given: object) -> None:
    with pytest.raises(FieldRuleViolation, match="industry: a value is required"):
        industry(required=True).normalise(given)


# definitions


def test_a_definition_label_defaults_to_its_readable_name() -> None:
    assert FieldDefinition(name="legal_form", kind=FieldKind.TEXT).label == "Legal form"


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ({"name": "Industry", "kind": "text"}, "lower-case identifier"),
        ({"name": "industry", "kind": "choice"}, "needs choices"),
        ({"name": "form", "kind": "choice", "choices": ["SpA", "S.p.A."]}, "are the same"),
        ({"name": "form", "kind": "choice", "choices": ["SpA"], "synonyms": {"x": "Srl"}}, "not a choice"),
        (
            {"name": "form", "kind": "choice", "choices": ["SpA", "Srl"], "synonyms": {"s.r.l": "SpA"}},
            "would also match 'Srl'",
        ),
        ({"name": "n", "kind": "number", "minimum": 5, "maximum": 1}, "is above maximum"),
        ({"name": "d", "kind": "date", "minimum": 5}, "are date values"),
        ({"name": "t", "kind": "text", "pattern": "(["}, "pattern does not compile"),
        ({"name": "t", "kind": "text", "choices": ["a"]}, "choices do\\(es\\) not apply"),
        ({"name": "n", "kind": "number", "max_length": 3}, "max_length do\\(es\\) not apply"),
        ({"name": "f", "kind": "label", "choices": ["Urgent"]}, "LabelChoice with a colour"),
        ({"name": "f", "kind": "label", "choices": [{"value": "Urgent", "colour": "mauve"}]}, "a colour is"),
        (
            {"name": "f", "kind": "choice", "choices": [{"value": "Urgent", "colour": "red"}]},
            "without colours",
        ),
    ],
)
def test_a_definition_that_breaks_its_own_rules_is_refused(
    definition: dict[str, object], problem: str
) -> None:
    with pytest.raises(pydantic.ValidationError, match=problem):
        FieldDefinition.model_validate(definition)


# field sets


def fields() -> FieldSet:
    return FieldSet([
        industry(required=True),
        legal_form(),
        FieldDefinition(name="employees", kind=FieldKind.NUMBER, minimum=0),
    ])


def test_a_field_set_returns_every_value_in_canonical_form() -> None:
    assert fields().validate({"industry": "software", "legal_form": "spa", "employees": 12}) == {
        "industry": "Software",
        "legal_form": "S.p.A.",
        "employees": "12",
    }


def test_a_field_set_reports_every_problem_at_once() -> None:
    with pytest.raises(InvalidInput) as refused:
        fields().validate({"legal_form": "Srll", "employees": -1, "colour": "blue"})
    assert [(e["loc"], e["type"]) for e in refused.value.errors] == [
        (("legal_form",), "not_allowed"),
        (("employees",), "out_of_range"),
        (("colour",), "unknown_field"),
        (("industry",), "missing"),
    ]


def test_a_single_problem_is_raised_as_that_fields_violation() -> None:
    with pytest.raises(FieldRuleViolation) as refused:
        fields().validate({"industry": "Sofware"})
    assert refused.value.suggestion == "Software"


def test_a_partial_update_does_not_require_the_fields_it_leaves_alone() -> None:
    assert fields().validate({"employees": "3"}, partial=True) == {"employees": "3"}


def test_a_field_set_refuses_a_field_defined_twice() -> None:
    with pytest.raises(InvalidInput, match="defined twice"):
        FieldSet([industry(), industry()])


def test_violations_find_stored_values_that_a_tightened_rule_now_refuses() -> None:
    stored = [{"industry": "Software", "employees": "120"}, {"industry": "Retail", "employees": "8"}]
    tightened = FieldSet([
        industry(required=True),
        FieldDefinition(name="employees", kind=FieldKind.NUMBER, minimum=0, maximum=100),
    ])
    found = [tightened.violations(values) for values in stored]
    assert [[(v.field, v.errors[0]["type"]) for v in problems] for problems in found] == [
        [("employees", "out_of_range")],
        [],
    ]
