"""The hygiene rules as pure functions over plain rows, at the edges of every number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from pydantic import ValidationError

from crmcore import BouncePolicy, ExpectedField, HygienePolicy
from crmcore.policies.hygiene import (
    DAY,
    bounced_addresses,
    completed_stays,
    grouped_stage_averages,
    is_stale,
    missing_fields,
    stage_averages,
    staleness,
)

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
ONE_DAY = timedelta(days=1)
MICRO = timedelta(microseconds=1)
POLICY = HygienePolicy()


def t(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def stays(*steps: tuple[str, float]) -> list[list[str]]:
    return [[stage, t(days)] for stage, days in steps]


def facts(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "party_id": "p", "kind": "person", "stage": "lead", "stages": stays(("lead", 0)), "owner": None,
        "set_aside": False, "merged_into": None, "open_opportunities": 0, "emails": ["p@example.com"],
        "phones": [], "vat_number": None, "fields": {}, "profile": {}, "reports": {},
    }
    row.update(fields)
    return row


def leads_worked_in(days: float, count: int) -> list[list[list[str]]]:
    """``count`` parties, each a lead for ``days`` before being qualified."""
    return [stays(("lead", 0), ("prospect", days)) for _ in range(count)]


# ---------------------------------------------------------------------------------------------- the policy


def test_the_default_policy_is_named_versioned_with_the_designs_numbers() -> None:
    assert (POLICY.name, POLICY.version) == ("hygiene", 1)
    assert (POLICY.stale_factor, POLICY.min_samples, POLICY.fallback_days) == (Decimal("2.5"), 20, 90)
    assert POLICY.stale_with_open_opportunity is False
    assert POLICY.engagement is None
    assert POLICY.recorded() == {"name": "hygiene", "version": 1}
    person = [(e.label, e.from_stage) for e in POLICY.expected["person"]]  # type: ignore[index]
    organization = [(e.label, e.from_stage) for e in POLICY.expected["organization"]]  # type: ignore[index]
    assert person == [("emails or phones", None), ("owner", "prospect")]
    assert organization == [("vat_number", "target"), ("owner", "target")]


@pytest.mark.parametrize("fields", [
    {"stale_factor": "0.99"}, {"stale_factor": 10.5}, {"min_samples": 0}, {"fallback_days": 0},
    {"fallback_days": 3651}, {"stale_with_open_opportunity": "yes"}, {"colour": "red"},
    {"expected": {"person": [{"fields": []}]}}, {"expected": {"person": [{"fields": ["Bad Name"]}]}},
    {"expected": {"alien": []}}, {"engagement": {"inactive_after_days": 0}},
])
def test_a_bad_policy_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        HygienePolicy(**fields)


def test_a_policy_is_frozen_and_takes_its_bounds() -> None:
    with pytest.raises(ValidationError):
        POLICY.min_samples = 3  # type: ignore[misc]
    assert HygienePolicy(stale_factor=1).stale_factor == 1
    assert HygienePolicy(stale_factor="10").stale_factor == 10
    assert ExpectedField(fields="owner").fields == ("owner",)


# ---------------------------------------------------------------------------------------------- averages


def test_only_stays_that_ended_by_the_moment_are_completed() -> None:
    history = stays(("suspect", 0), ("lead", 10), ("prospect", 40))
    assert list(completed_stays(history, T0 + 40 * ONE_DAY)) == [("suspect", 10 * DAY), ("lead", 30 * DAY)]
    assert list(completed_stays(history, T0 + 40 * ONE_DAY - MICRO)) == [("suspect", 10 * DAY)]
    assert list(completed_stays(stays(("lead", 0)), T0 + 1000 * ONE_DAY)) == []  # still running


def test_a_stage_with_fewer_than_min_samples_completed_stays_falls_back() -> None:
    nineteen = stage_averages(leads_worked_in(30, 19), T0 + 100 * ONE_DAY, POLICY)
    assert nineteen.of("lead") == ("lead", None, Fraction(90 * DAY), 0, "fallback")
    twenty = stage_averages(leads_worked_in(30, 20), T0 + 100 * ONE_DAY, POLICY)
    assert twenty.of("lead") == ("lead", None, Fraction(30 * DAY), 20, "measured")
    assert twenty.of("suspect").basis == "fallback"


def test_the_average_is_the_exact_mean_of_the_completed_stays() -> None:
    parties = [stays(("target", 0), ("customer", 1)), stays(("target", 0), ("customer", 2)),
               stays(("target", 0))]  # the last still running: no sample
    averages = stage_averages(parties, T0 + 10 * ONE_DAY, HygienePolicy(min_samples=2))
    assert averages.of("target").mean == Fraction(3 * DAY, 2)
    assert averages.of("target").days == Fraction(3, 2)


def test_a_group_with_too_few_stays_uses_the_stages_overall_average() -> None:
    grouped = [("ann", s) for s in leads_worked_in(10, 20)] + [("bob", s) for s in leads_worked_in(40, 19)]
    averages = grouped_stage_averages(grouped, T0 + 100 * ONE_DAY, POLICY)
    assert averages.of("lead", "ann") == ("lead", "ann", Fraction(10 * DAY), 20, "measured")
    overall = Fraction(20 * 10 * DAY + 19 * 40 * DAY, 39)
    assert averages.of("lead", "bob") == ("lead", "bob", overall, 39, "stage")
    assert averages.of("lead", "cy") == ("lead", "cy", overall, 39, "stage")  # no stays at all
    assert averages.of("lead") == ("lead", None, overall, 39, "stage")
    assert averages.overall["lead"].basis == "measured"


def test_a_group_falls_back_to_the_fixed_days_when_the_stage_has_too_few_overall() -> None:
    averages = grouped_stage_averages([("ann", s) for s in leads_worked_in(10, 19)], T0 + 100 * ONE_DAY,
                                      POLICY)
    assert averages.of("lead", "ann") == ("lead", "ann", Fraction(90 * DAY), 0, "fallback")


# ---------------------------------------------------------------------------------------------- stale


def test_a_party_exactly_at_the_threshold_is_not_stale_and_a_microsecond_later_is() -> None:
    averages = stage_averages(leads_worked_in(30, 20), T0 + 30 * ONE_DAY, POLICY)
    party = facts(stages=stays(("lead", 100)))
    edge = T0 + 100 * ONE_DAY + 75 * ONE_DAY  # 2.5 x 30 days
    assert not is_stale(party, averages, edge, POLICY)
    assert is_stale(party, averages, edge + MICRO, POLICY)
    found = staleness(party, averages, edge, POLICY)
    assert found is not None
    assert (found.elapsed, found.threshold) == (75 * DAY, Fraction(75 * DAY))


def test_the_factor_moves_the_threshold() -> None:
    averages = stage_averages([], T0, POLICY)  # the 90-day fallback
    party = facts(stages=stays(("suspect", 0)), stage="suspect")
    assert not is_stale(party, averages, T0 + 90 * ONE_DAY, HygienePolicy(stale_factor=1))
    assert is_stale(party, averages, T0 + 90 * ONE_DAY + MICRO, HygienePolicy(stale_factor=1))
    assert not is_stale(party, averages, T0 + 900 * ONE_DAY, HygienePolicy(stale_factor=10))


@pytest.mark.parametrize("change", [
    {"stage": "customer", "stages": stays(("customer", 0))},
    {"stage": "disqualified", "stages": stays(("disqualified", 0))},
    {"set_aside": True},
    {"merged_into": "q"},
    {"open_opportunities": 1},
])
def test_parties_out_of_the_open_stages_set_aside_merged_or_negotiating_are_never_stale(
    change: dict[str, Any],
) -> None:
    averages = stage_averages([], T0, POLICY)
    assert not is_stale(facts(**change), averages, T0 + 10_000 * ONE_DAY, POLICY)


def test_an_open_opportunity_counts_only_unless_the_policy_says_otherwise() -> None:
    averages = stage_averages([], T0, POLICY)
    negotiating = facts(open_opportunities=2)
    working = HygienePolicy(stale_with_open_opportunity=True)
    assert is_stale(negotiating, averages, T0 + 1000 * ONE_DAY, working)


def test_a_party_is_judged_against_its_groups_average() -> None:
    grouped = [("ann", s) for s in leads_worked_in(10, 20)] + [("bob", s) for s in leads_worked_in(40, 20)]
    averages = grouped_stage_averages(grouped, T0 + 100 * ONE_DAY, POLICY)
    party = facts(stages=stays(("lead", 100)))
    at = T0 + 150 * ONE_DAY  # 50 days in: over 25 (ann's threshold), under 100 (bob's)
    assert is_stale(party, averages, at, POLICY, group="ann")
    assert not is_stale(party, averages, at, POLICY, group="bob")


# ---------------------------------------------------------------------------------------------- incomplete


def test_a_person_needs_an_email_address_or_a_phone_number() -> None:
    assert missing_fields(facts(emails=[], phones=[]), POLICY) == ["emails or phones"]
    assert missing_fields(facts(emails=[], phones=["+390612345678"]), POLICY) == []


@pytest.mark.parametrize(("stage", "expected"), [
    ("suspect", []), ("lead", []), ("prospect", ["owner"]), ("customer", ["owner"]), ("disqualified", []),
])
def test_a_person_needs_an_owner_from_prospect_on(stage: str, expected: list[str]) -> None:
    assert missing_fields(facts(stage=stage), POLICY) == expected
    assert missing_fields(facts(stage=stage, owner="ann"), POLICY) == []


@pytest.mark.parametrize(("stage", "expected"), [
    ("suspect", []), ("lead", []), ("target", ["vat_number", "owner"]), ("customer", ["vat_number", "owner"]),
])
def test_an_organization_needs_a_vat_number_and_an_owner_from_target_on(
    stage: str, expected: list[str],
) -> None:
    organization = facts(kind="organization", stage=stage, emails=[])
    assert missing_fields(organization, POLICY) == expected
    assert missing_fields({**organization, "vat_number": "IT00743110157", "owner": "ann"}, POLICY) == []


def test_required_custom_fields_and_profile_traits_count_and_blank_is_empty() -> None:
    row = facts(fields={"industry": "  ", "size": 3}, profile={"region": "Lombardy"})
    required = {"industry": "custom", "size": "custom", "region": "profile", "sector": "profile"}
    assert missing_fields(row, POLICY, required) == ["industry", "sector"]
    assert missing_fields(row, POLICY, ["industry", "region"]) == ["industry"]


def test_parties_set_aside_or_merged_miss_nothing() -> None:
    assert missing_fields(facts(emails=[], set_aside=True), POLICY, {"x": "custom"}) == []
    assert missing_fields(facts(emails=[], merged_into="q"), POLICY, {"x": "custom"}) == []


def test_the_policy_may_expect_other_fields() -> None:
    policy = HygienePolicy(expected={"person": [{"fields": ["industry"], "from_stage": "lead"}]})
    assert missing_fields(facts(stage="suspect"), policy) == []
    assert missing_fields(facts(), policy) == ["industry"]
    assert missing_fields(facts(fields={"industry": "steel"}), policy) == []
    assert missing_fields(facts(kind="organization", emails=[]), policy) == []


# ---------------------------------------------------------------------------------------------- bounced


def decision(suppressed: bool, days: float, rule: str) -> dict[str, Any]:
    return {"suppressed": suppressed, "effective_at": t(days), "evidence": ["e"], "rule": rule}


def report(outcome: str, days: float, version: int) -> dict[str, Any]:
    return {"outcome": outcome, "raw_code": None, "order": [t(days), t(days), version]}


def test_an_address_suppressed_by_the_decision_in_force_is_bounced() -> None:
    rows = {"p@example.com": {"decisions": [decision(True, 5, "hard_bounce")]}}
    assert bounced_addresses(facts(), rows, T0 + 5 * ONE_DAY - MICRO, BouncePolicy()) == []
    found = bounced_addresses(facts(), rows, T0 + 5 * ONE_DAY, BouncePolicy())
    assert [(b.channel, b.address, b.rule, b.since, b.source) for b in found] == [
        ("email", "p@example.com", "hard_bounce", T0 + 5 * ONE_DAY, "decision")]


def test_a_reinstated_address_is_not_bounced() -> None:
    decisions = [decision(True, 5, "hard_bounce"), decision(False, 6, "delivered")]
    rows = {"p@example.com": {"decisions": decisions}}
    assert bounced_addresses(facts(), rows, T0 + 10 * ONE_DAY, BouncePolicy()) == []


def test_a_reinstatement_in_force_outweighs_the_partys_own_ledger() -> None:
    ledger = {"p@example.com": [report("hard_bounce", 1, 1)]}
    decisions = [decision(False, 2, "delivered")]
    found = bounced_addresses(facts(reports=ledger), {"p@example.com": {"decisions": decisions}},
                              T0 + 10 * ONE_DAY, BouncePolicy())
    assert found == []
    before = bounced_addresses(facts(reports=ledger), {"p@example.com": {"decisions": decisions}},
                               T0 + 2 * ONE_DAY - MICRO, BouncePolicy())  # no decision in force yet
    assert [(b.rule, b.source) for b in before] == [("hard_bounce", "ledger")]


def test_an_address_undeliverable_by_the_partys_own_ledger_is_bounced() -> None:
    phone = "+390612345678"
    ledger = {phone: [report("soft_bounce", 1, 1), report("soft_bounce", 2, 2)]}
    row = facts(phones=[phone], reports=ledger)
    assert bounced_addresses(row, {}, T0 + 10 * ONE_DAY, BouncePolicy()) == []  # 2 soft bounces: not yet
    ledger[phone].append(report("soft_bounce", 3, 3))
    found = bounced_addresses(row, {}, T0 + 10 * ONE_DAY, BouncePolicy())
    assert [(b.channel, b.rule, b.since, b.source) for b in found] == [
        ("phone", "soft_bounces", T0 + 3 * ONE_DAY, "ledger")]
    assert bounced_addresses(row, {}, T0 + 10 * ONE_DAY, BouncePolicy(soft_bounce_limit=4)) == []


def test_every_address_of_the_party_is_read() -> None:
    ledger = {"b@example.com": [report("hard_bounce", 1, 1)]}
    row = facts(emails=["a@example.com", "B@Example.com"], reports=ledger)
    found = bounced_addresses(row, {}, T0 + 2 * ONE_DAY, BouncePolicy())
    assert [b.address for b in found] == ["B@Example.com"]

