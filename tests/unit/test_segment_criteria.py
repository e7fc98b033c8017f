"""Segment criteria: checked against the field rules when parsed, canonical when stored, evaluated purely."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmcore import FieldRuleViolation, InvalidInput
from crmcore.exceptions import FieldNotDefined
from crmcore.fields import FieldDefinition, FieldSet
from crmcore.segments import Context, Criterion, Facts, parse_criteria, register_criterion

FIELDS = FieldSet([
    FieldDefinition(name="region", kind="choice", choices=("Lombardy", "Lazio", "Veneto"),
                    synonyms={"lombardia": "Lombardy"}),
    FieldDefinition(name="revenue", kind="number"),
    FieldDefinition(name="founded", kind="date"),
    FieldDefinition(name="tags", kind="multi_choice", choices=("vip", "new", "reseller")),
    FieldDefinition(name="notes", kind="text"),
    FieldDefinition(name="interests", kind="text", section="profile"),
])
NOW = Context(now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
ADA: Facts = {
    "party_id": "0190a0e0-0000-7000-8000-000000000001", "stage": "customer", "kind": "person",
    "owner": "rep:anna", "organization_id": "0190A0E0-0000-7000-8000-0000000000AA",
    "fields": {"region": "Lombardy", "revenue": "2500000", "founded": "1999-04-01", "tags": ["vip", "new"],
               "notes": "Met at the Milan fair"},
    "profile": {"interests": "Cloud and security"},
    "consent": {"email": "subscribed", "phone": "unsubscribed"}, "deliverable": {"email": True},
    "last_interaction_at": "2026-09-01T10:00:00+00:00", "open_opportunities": 2,
    "won_value": {"EUR": "12000.00"}, "last_won_at": "2026-03-01T10:00:00+00:00",
}


def holds(criteria: dict[str, Any], facts: Facts = ADA, context: Context = NOW) -> bool:
    return parse_criteria(criteria, FIELDS).evaluate(facts, context)


@pytest.mark.parametrize(("criteria", "expected"), [
    ({"stage": "customer"}, True),
    ({"stage": ["lead", "prospect"]}, False),
    ({"kind": "organization"}, False),
    ({"owner": ["rep:anna", "rep:bruno"]}, True),
    ({"owner": None}, False),
    ({"field": "region", "eq": "lombardia"}, True),  # a synonym reads as its canonical value
    ({"field": "region", "in": ["Lazio", "Veneto"]}, False),
    ({"field": "revenue", "ge": "1000000"}, True),
    ({"field": "revenue", "lt": 2500000}, False),
    ({"field": "founded", "lt": "2000-01-01"}, True),
    ({"field": "tags", "contains": "VIP"}, True),
    ({"field": "tags", "contains": "reseller"}, False),
    ({"field": "notes", "contains": "milan"}, True),
    ({"field": "interests", "contains": "security"}, True),  # a profile trait
    ({"field": "notes", "present": False}, False),
    ({"consent": "email", "is": "subscribed"}, True),
    ({"consent": "phone", "is": "subscribed"}, False),
    ({"consent": "newsletter", "is": "unknown"}, True),
    ({"deliverable": "email"}, True),
    ({"deliverable": "phone"}, False),
    ({"last_interaction": {"within_days": 90}}, True),
    ({"last_interaction": {"within_days": 60}}, False),
    ({"last_interaction": {"older_than_days": 30}}, True),
    ({"last_interaction": {"never": True}}, False),
    ({"open_opportunities": {"min": 1, "max": 2}}, True),
    ({"open_opportunities": {"min": 3}}, False),
    ({"won_value": {"currency": "EUR", "ge": "10000"}}, True),
    ({"won_value": {"currency": "USD", "ge": "1"}}, False),
    ({"member_of": "0190a0e0-0000-7000-8000-0000000000aa"}, True),
    ({"all": [{"stage": "customer"}, {"field": "region", "eq": "Lombardy"}]}, True),
    ({"any": [{"stage": "lead"}, {"kind": "organization"}]}, False),
    ({"not": {"consent": "phone", "is": "subscribed"}}, True),
    ({"all": []}, True),
    ({"any": []}, False),
])
def test_each_criterion_reads_the_facts(criteria: dict[str, Any], expected: bool) -> None:
    assert holds(criteria) is expected


def test_a_party_that_never_interacted_or_has_no_value_fails_value_tests_but_passes_never() -> None:
    bare: Facts = {"party_id": "p", "stage": "lead", "kind": "person"}
    assert holds({"last_interaction": {"never": True}}, bare)
    assert holds({"last_interaction": {"older_than_days": 10}}, bare)  # never counts as longer ago
    assert not holds({"last_interaction": {"within_days": 10}}, bare)
    assert not holds({"field": "revenue", "ge": 0}, bare)
    assert holds({"field": "revenue", "present": False}, bare)
    assert holds({"owner": None}, bare)
    assert holds({"consent": "email", "is": "unknown"}, bare)


BIG, SMALL = "0190f0c1-0000-7000-8000-00000000000b", "0190f0c1-0000-7000-8000-00000000000c"


def test_membership_of_another_segment_is_asked_of_the_context() -> None:
    members = {(BIG, ADA["party_id"])}
    context = Context(now=NOW.now, in_segment=lambda segment, party: (segment, party) in members)
    assert holds({"segment": BIG.upper()}, context=context)  # ids are read in their canonical form
    assert not holds({"segment": SMALL}, context=context)
    with pytest.raises(InvalidInput, match="segment id"):
        parse_criteria({"segment": "big"})


def test_stored_criteria_are_canonical_and_read_back_equal() -> None:
    node = parse_criteria({"all": [{"field": "region", "in": ["lombardia", "LAZIO"]},
                                   {"field": "tags", "contains": "Vip"}, {"stage": "prospect"},
                                   {"not": {"owner": "rep:anna"}}]}, FIELDS)
    assert node.to_json() == {"all": [{"field": "region", "in": ["Lombardy", "Lazio"]},
                                      {"field": "tags", "contains": "vip"}, {"stage": ["prospect"]},
                                      {"not": {"owner": ["rep:anna"]}}]}
    assert parse_criteria(node.to_json(), FIELDS) == node


@pytest.mark.parametrize(("criteria", "error", "where"), [
    ({"field": "regoin", "eq": "Lazio"}, FieldNotDefined, None),
    ({"field": "region", "eq": "Lombardi"}, FieldRuleViolation, None),
    ({"field": "revenue", "ge": "a lot"}, FieldRuleViolation, None),
    ({"field": "region", "lt": "Lazio"}, InvalidInput, None),
    ({"field": "revenue", "contains": "1"}, InvalidInput, None),
    ({"field": "region", "eq": "Lazio", "in": ["Lazio"]}, InvalidInput, None),
    ({"field": "region"}, InvalidInput, None),
    ({"stage": "customer", "kind": "person"}, InvalidInput, ("criteria",)),
    ({"all": [{"stage": "nope"}]}, InvalidInput, ("criteria", "all", 0, "stage", 0)),
    ({"any": {"stage": "lead"}}, InvalidInput, ("criteria", "any")),
    ({"consent": "fax", "is": "subscribed"}, InvalidInput, None),
    ({"last_interaction": {"within_days": 1, "never": True}}, InvalidInput, None),
    ({"won_value": {"currency": "euro", "ge": 1}}, InvalidInput, None),
    ({"open_opportunities": {"min": -1}}, InvalidInput, None),
    ({"member_of": "acme"}, InvalidInput, None),
    ({"colour": "red"}, InvalidInput, None),
    ([{"stage": "lead"}], InvalidInput, None),
])
def test_criteria_that_cannot_hold_are_refused_with_a_typed_error(
    criteria: Any, error: type[Exception], where: tuple[Any, ...] | None,
) -> None:
    with pytest.raises(error) as raised:
        parse_criteria(criteria, FIELDS)
    if where is not None:
        assert isinstance(raised.value, InvalidInput)
        assert raised.value.errors[0]["loc"] == where


def test_a_wrong_spelling_gets_the_closest_allowed_value() -> None:
    with pytest.raises(FieldRuleViolation) as raised:
        parse_criteria({"field": "region", "eq": "Lombardi"}, FIELDS)
    assert raised.value.suggestion == "Lombardy"


def test_criteria_nested_without_end_are_refused() -> None:
    deep: dict[str, Any] = {"stage": "lead"}
    for _ in range(20):
        deep = {"not": deep}
    with pytest.raises(InvalidInput, match="deeper"):
        parse_criteria(deep, FIELDS)


def test_new_kinds_of_criterion_can_be_registered_once() -> None:
    class Opened(Criterion):
        tag = "opened_any_mail"
        opened_any_mail: bool

        def evaluate(self, facts: Facts, context: Context) -> bool:
            return bool(facts.get("open_opportunities")) is self.opened_any_mail

    register_criterion(Opened)
    assert holds({"opened_any_mail": True})
    register_criterion(Opened)  # the same class again: no harm
    with pytest.raises(ValueError, match="registered already"):
        register_criterion(type("Other", (Opened,), {}))


# ---------------------------------------------------------------------- properties

LEAVES = st.sampled_from([
    {"stage": "customer"}, {"stage": ["lead"]}, {"kind": "person"}, {"owner": None},
    {"field": "region", "eq": "Lazio"}, {"field": "revenue", "gt": "100"},
    {"field": "tags", "contains": "new"},
    {"consent": "email", "is": "unsubscribed"}, {"last_interaction": {"within_days": 30}},
    {"open_opportunities": {"min": 1}}, {"won_value": {"currency": "EUR", "ge": "5000"}},
])
TREES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.builds(lambda xs: {"all": xs}, st.lists(inner, max_size=3)),
    st.builds(lambda xs: {"any": xs}, st.lists(inner, max_size=3)),
    st.builds(lambda x: {"not": x}, inner),
), max_leaves=8)
FACTS = st.fixed_dictionaries({
    "party_id": st.just("p"),
    "stage": st.sampled_from(["lead", "prospect", "customer"]),
    "kind": st.sampled_from(["person", "organization"]),
    "owner": st.none() | st.just("rep:anna"),
    "fields": st.fixed_dictionaries({}, optional={
        "region": st.sampled_from(["Lombardy", "Lazio"]), "revenue": st.sampled_from(["50", "150"]),
        "tags": st.lists(st.sampled_from(["vip", "new"]), unique=True, min_size=1)}),
    "consent": st.fixed_dictionaries({}, optional={"email": st.sampled_from(["subscribed", "unsubscribed"])}),
    "last_interaction_at": st.none() | st.sampled_from(["2026-11-01T00:00:00+00:00",
                                                        "2025-01-01T00:00:00+00:00"]),
    "open_opportunities": st.integers(0, 2),
    "won_value": st.fixed_dictionaries({}, optional={"EUR": st.sampled_from(["1000", "9000"])}),
})


@given(tree=TREES, facts=FACTS)
def test_any_tree_reads_back_equal_and_negation_and_de_morgan_hold(tree: dict[str, Any], facts: Any) -> None:
    node = parse_criteria(tree, FIELDS)
    assert parse_criteria(node.to_json(), FIELDS) == node
    result = node.evaluate(facts, NOW)
    assert parse_criteria({"not": tree}, FIELDS).evaluate(facts, NOW) is not result
    assert parse_criteria({"all": [tree, tree]}, FIELDS).evaluate(facts, NOW) is result
    other = {"stage": "customer"}
    both = parse_criteria({"not": {"all": [tree, other]}}, FIELDS).evaluate(facts, NOW)
    either = parse_criteria({"any": [{"not": tree}, {"not": other}]}, FIELDS).evaluate(facts, NOW)
    assert both is either
