"""The bounce policy on its own: the decision timeline of an address, and reconciling it with the record."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from crmcore.policies.consent import (
    RULE_COMPLAINT,
    RULE_DELIVERED,
    RULE_HARD_BOUNCE,
    RULE_REAPPLIED,
    RULE_SOFT_BOUNCES,
    BouncePolicy,
    BounceReport,
    decision_timeline,
    deliverability_of,
    state_at,
)
from crmcore.policies.suppression import (
    RecordedDecision,
    address_key_of,
    in_force,
    reconcile,
    screen,
    when_engagement_reported_unsubscribe_party,
)
from crmcore.values import ConsentChannel, EngagementKind

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
DEFAULT = BouncePolicy()


def report(outcome: str, days: float, evidence: str | None = None, raw_code: str | None = None,
           order: int = 0) -> BounceReport:
    return BounceReport(T0 + days * DAY, outcome, raw_code, evidence or f"{outcome}@{days}", order)


def changes(reports: list[BounceReport], policy: BouncePolicy = DEFAULT) -> list[tuple[bool, float, str]]:
    """The timeline as (suppressed?, day, rule)."""
    return [(d.suppressed, (d.effective_at - T0) / DAY, d.rule) for d in decision_timeline(reports, policy)]


# -- the policy's settings --------------------------------------------------------------------------------


def test_the_default_policy_is_bounce_version_2_with_three_soft_bounces_in_sixty_days() -> None:
    assert (DEFAULT.name, DEFAULT.version) == ("bounce", 2)
    assert (DEFAULT.soft_bounce_limit, DEFAULT.soft_bounce_window_days) == (3, 60)
    assert DEFAULT.delivery_clears_hard_bounce
    assert DEFAULT.stamp() == {"name": "bounce", "version": 2}


@pytest.mark.parametrize("bad", [{"soft_bounce_window_days": 0}, {"version": 0}, {"name": ""},
                                 {"soft_bounce_limit": 0}, {"window": 3}])
def test_a_policy_with_a_bad_setting_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BouncePolicy(**bad)  # type: ignore[arg-type]


# -- hard bounces ------------------------------------------------------------------------------------------


def test_a_hard_bounce_suppresses_the_address_from_when_it_happened() -> None:
    [decision] = decision_timeline([report("delivered", 0), report("hard_bounce", 2, "h1", "550 5.1.1")])
    assert decision.suppressed
    assert decision.effective_at == T0 + 2 * DAY
    assert decision.rule == RULE_HARD_BOUNCE
    assert decision.evidence == ("h1",)
    assert "550 5.1.1" in decision.reason


def test_a_delivery_after_a_hard_bounce_reinstates_the_address_naming_the_delivery() -> None:
    timeline = decision_timeline([report("hard_bounce", 1), report("delivered", 3, "d1")])
    assert [(d.suppressed, d.rule, d.evidence) for d in timeline] == [
        (True, RULE_HARD_BOUNCE, ("hard_bounce@1",)), (False, RULE_DELIVERED, ("d1",))]


@pytest.mark.parametrize("proof", ["opened", "clicked"])
def test_an_open_or_a_click_proves_a_delivery(proof: str) -> None:
    assert changes([report("hard_bounce", 1), report(proof, 3)]) == [
        (True, 1, RULE_HARD_BOUNCE), (False, 3, RULE_DELIVERED)]


def test_a_policy_may_keep_hard_bounces_whatever_is_delivered_after() -> None:
    strict = BouncePolicy(delivery_clears_hard_bounce=False)
    assert changes([report("hard_bounce", 1), report("delivered", 3)], strict) == [
        (True, 1, RULE_HARD_BOUNCE)]


def test_a_raw_code_is_read_again_by_the_policy() -> None:
    assert changes([report("hard_bounce", 1, raw_code="452 4.2.2")]) == []  # a soft bounce, really
    lenient = BouncePolicy(vendor_codes={"blocked": "soft_bounce"}, soft_bounce_limit=1)
    assert changes([report("hard_bounce", 1, raw_code="blocked")], lenient) == [(True, 1, RULE_SOFT_BOUNCES)]


# -- soft bounces ------------------------------------------------------------------------------------------


def test_three_soft_bounces_within_sixty_days_tip_the_address_at_the_third() -> None:
    softs = [report("soft_bounce", d, f"s{d}") for d in (0, 20, 40)]
    assert changes(softs[:2]) == []
    [decision] = decision_timeline(softs)
    assert (decision.suppressed, decision.effective_at, decision.rule) == (True, T0 + 40 * DAY,
                                                                           RULE_SOFT_BOUNCES)
    assert decision.evidence == ("s0", "s20", "s40")
    assert "3 soft bounces within 60 days" in decision.reason


def test_the_window_includes_both_ends_exactly_sixty_days_apart() -> None:
    assert changes([report("soft_bounce", d) for d in (0, 30, 60)]) == [(True, 60, RULE_SOFT_BOUNCES)]


def test_soft_bounces_further_apart_than_the_window_do_not_tip_the_address() -> None:
    late = 60 + 1 / 86_400_000_000  # one microsecond past the window
    assert changes([report("soft_bounce", d) for d in (0, 30, late)]) == []
    # ...but a fourth one brings three back within sixty days
    assert changes([report("soft_bounce", d) for d in (0, 30, late, 61)]) == [(True, 61, RULE_SOFT_BOUNCES)]


def test_without_a_window_every_soft_bounce_since_the_last_delivery_counts() -> None:
    policy = BouncePolicy(soft_bounce_window_days=None)
    assert changes([report("soft_bounce", d) for d in (0, 100, 300)], policy) == [
        (True, 300, RULE_SOFT_BOUNCES)]


def test_a_delivery_between_soft_bounces_starts_the_count_again() -> None:
    reports = [report("soft_bounce", 0), report("soft_bounce", 1), report("delivered", 2),
               report("soft_bounce", 3), report("soft_bounce", 4)]
    assert changes(reports) == []
    assert changes([*reports, report("soft_bounce", 5)]) == [(True, 5, RULE_SOFT_BOUNCES)]


def test_an_address_treated_as_hard_bounced_stays_so_until_a_delivery() -> None:
    reports = [report("soft_bounce", d) for d in (0, 1, 2, 3, 70, 140)]
    assert changes(reports) == [(True, 2, RULE_SOFT_BOUNCES)]
    assert changes([*reports, report("delivered", 150)]) == [(True, 2, RULE_SOFT_BOUNCES),
                                                             (False, 150, RULE_DELIVERED)]
    strict = BouncePolicy(delivery_clears_hard_bounce=False)
    assert changes([*reports, report("delivered", 150)], strict) == [(True, 2, RULE_SOFT_BOUNCES)]


# -- complaints --------------------------------------------------------------------------------------------


def test_a_complaint_suppresses_and_no_delivery_clears_it() -> None:
    reports = [report("delivered", 0), report("complaint", 1, "x1"), report("delivered", 5)]
    [decision] = decision_timeline(reports)
    assert (decision.suppressed, decision.rule, decision.evidence) == (True, RULE_COMPLAINT, ("x1",))


def test_a_hard_bounce_cleared_under_a_complaint_changes_nothing() -> None:
    reports = [report("hard_bounce", 0), report("complaint", 1), report("delivered", 2)]
    assert changes(reports) == [(True, 0, RULE_HARD_BOUNCE)]


def test_reports_that_say_nothing_about_the_address_are_ignored() -> None:
    assert changes([report("unsubscribed", 0), report("called", 1), report("hard_bounce", 2)]) == [
        (True, 2, RULE_HARD_BOUNCE)]


# -- late and repeated reports -----------------------------------------------------------------------------


def test_reports_are_read_in_effective_time_order_whatever_order_they_come_in() -> None:
    reports = [report("soft_bounce", 40), report("delivered", 10), report("soft_bounce", 0),
               report("soft_bounce", 20), report("soft_bounce", 30)]
    # in effective order: soft 0, delivered 10, soft 20, 30, 40: three since the delivery
    assert changes(reports) == [(True, 40, RULE_SOFT_BOUNCES)]
    shuffled = list(reports)
    random.Random(3).shuffle(shuffled)
    assert decision_timeline(shuffled) == decision_timeline(reports)


def test_a_late_delivery_between_soft_bounces_undoes_the_tip() -> None:
    softs = [report("soft_bounce", d) for d in (0, 10, 20)]
    assert changes(softs) == [(True, 20, RULE_SOFT_BOUNCES)]
    assert changes([*softs, report("delivered", 15)]) == []


def test_reports_effective_at_the_same_moment_are_read_in_recording_order() -> None:
    first = [report("hard_bounce", 1, order=1), report("delivered", 1, order=2)]
    second = [report("hard_bounce", 1, order=2), report("delivered", 1, order=1)]
    assert state_at(decision_timeline(first)).suppressed is False  # type: ignore[union-attr]
    assert state_at(decision_timeline(second)).suppressed is True  # type: ignore[union-attr]


# -- the state at a moment agrees with the timeline --------------------------------------------------------

OUTCOMES = ["delivered", "opened", "clicked", "soft_bounce", "hard_bounce", "complaint", "unsubscribed"]
reports_strategy = st.lists(
    st.builds(report, st.sampled_from(OUTCOMES), st.integers(0, 200).map(lambda h: h / 2),
              st.none(), st.none() | st.sampled_from(["550", "421", "250"]), st.integers(0, 3)),
    max_size=30)
policies = st.builds(BouncePolicy, soft_bounce_limit=st.integers(1, 4),
                     soft_bounce_window_days=st.none() | st.integers(1, 80),
                     delivery_clears_hard_bounce=st.booleans())


@settings(max_examples=200, deadline=None)
@given(reports=reports_strategy, policy=policies, probe=st.integers(-1, 201))
def test_deliverability_at_any_moment_is_the_timeline_decision_in_force_then(
    reports: list[BounceReport], policy: BouncePolicy, probe: int,
) -> None:
    moment = T0 + probe / 2 * DAY
    decided = state_at(decision_timeline(reports, policy), moment)
    state = deliverability_of(reports, "ada@example.com", moment, policy)
    assert state.deliverable is not (decided is not None and decided.suppressed)
    if not state.deliverable:
        assert decided is not None
        assert state.since == decided.effective_at
        assert state.rule in (RULE_HARD_BOUNCE, RULE_SOFT_BOUNCES, RULE_COMPLAINT)


@settings(max_examples=200, deadline=None)
@given(reports=reports_strategy, policy=policies)
def test_the_timeline_alternates_and_never_depends_on_the_order_given(
    reports: list[BounceReport], policy: BouncePolicy,
) -> None:
    reports = [r._replace(order=n) for n, r in enumerate(reports)]  # recording order: each its own place
    timeline = decision_timeline(reports, policy)
    assert [d.suppressed for d in timeline] == [n % 2 == 0 for n in range(len(timeline))]
    assert timeline == decision_timeline(list(reversed(reports)), policy)


# -- reconciling the record with the timeline --------------------------------------------------------------


def recorded(timeline: list[tuple[bool, float]]) -> list[RecordedDecision]:
    return [RecordedDecision(s, T0 + d * DAY, ("old",)) for s, d in timeline]


def test_nothing_recorded_yet_means_recording_the_whole_timeline() -> None:
    timeline = decision_timeline([report("hard_bounce", 1), report("delivered", 2)])
    assert reconcile(timeline, [], DEFAULT) == timeline


def test_a_record_that_reads_as_the_timeline_needs_nothing() -> None:
    timeline = decision_timeline([report("hard_bounce", 1), report("delivered", 2)])
    assert reconcile(timeline, recorded([(True, 1), (False, 2)]), DEFAULT) == []


def test_a_late_report_is_decided_at_its_own_moment() -> None:
    timeline = decision_timeline([report("hard_bounce", 1), report("delivered", 5), report("hard_bounce", 3)])
    # recorded: suppressed at 1, reinstated at 5; the late hard bounce at 3 changes nothing: still suppressed
    assert reconcile(timeline, recorded([(True, 1), (False, 5)]), DEFAULT) == []
    late = decision_timeline([report("soft_bounce", d) for d in (0, 1, 2)])
    assert [(d.suppressed, d.effective_at) for d in reconcile(late, [], DEFAULT)] == [(True, T0 + 2 * DAY)]


def test_an_address_no_longer_suppressed_is_reinstated_from_its_old_suppression() -> None:
    tolerant = BouncePolicy(soft_bounce_limit=5, version=3)
    timeline = decision_timeline([report("soft_bounce", d) for d in (0, 1, 2)], tolerant)
    [change] = reconcile(timeline, recorded([(True, 2)]), tolerant)
    assert (change.suppressed, change.effective_at, change.rule) == (False, T0 + 2 * DAY, RULE_REAPPLIED)
    assert change.evidence == ("old",)
    assert "version 3" in change.reason


def test_an_address_newly_suppressed_is_suppressed_from_its_tipping_report() -> None:
    strict = BouncePolicy(soft_bounce_limit=1, version=3)
    timeline = decision_timeline([report("soft_bounce", 4, "s4")], strict)
    [change] = reconcile(timeline, [], strict)
    assert (change.suppressed, change.effective_at, change.rule, change.evidence) == (
        True, T0 + 4 * DAY, RULE_SOFT_BOUNCES, ("s4",))


def test_the_decision_recorded_last_wins_among_those_of_one_moment() -> None:
    record = recorded([(True, 2), (False, 2)])
    assert in_force(record) == 1
    assert in_force(record, T0 + DAY) is None
    assert in_force(recorded([(True, 3), (False, 2)])) == 0  # the later moment, though recorded first


@settings(max_examples=200, deadline=None)
@given(reports=reports_strategy, old=policies, new=policies,
       probes=st.lists(st.integers(-1, 201), min_size=1, max_size=10))
def test_after_reconciling_the_record_reads_as_the_new_timeline_at_every_moment(
    reports: list[BounceReport], old: BouncePolicy, new: BouncePolicy, probes: list[int],
) -> None:
    record = [RecordedDecision(d.suppressed, d.effective_at, d.evidence)
              for d in decision_timeline(reports, old)]
    timeline = decision_timeline(reports, new)
    record += [RecordedDecision(d.suppressed, d.effective_at, d.evidence)
               for d in reconcile(timeline, record, new)]
    assert reconcile(timeline, record, new) == []
    for probe in probes:
        moment = T0 + probe / 2 * DAY
        index = in_force(record, moment)
        decided = state_at(timeline, moment)
        wanted = decided is not None and decided.suppressed
        assert (index is not None and record[index].suppressed) is wanted


# -- the other pure pieces ---------------------------------------------------------------------------------


def test_addresses_are_keyed_as_the_party_ledger_keys_them() -> None:
    assert address_key_of("Ada.L@Example.COM") == "ada.l@example.com"
    assert address_key_of("+390612345678") == "+390612345678"
    assert address_key_of("ada@bücher.example") == "ada@xn--bcher-kva.example"


def test_only_bounces_complaints_and_reports_on_suppressed_addresses_are_screened_in() -> None:
    touched = [("a", "delivered"), ("b", "opened"), ("c", "soft_bounce"), ("d", "complaint"),
               ("e", "hard_bounce"), ("s", "clicked")]
    assert screen(touched, {"s"}) == {"c", "d", "e", "s"}


@pytest.mark.parametrize(("kind", "channel"), [("unsubscribed", "newsletter"), ("complaint", "newsletter"),
                                               ("unsubscribed", "telemarketing")])
def test_an_unsubscription_or_a_complaint_unsubscribes_from_the_campaign_channel(
    kind: str, channel: str,
) -> None:
    data = {"channel": channel, "party_id": "p", "source": "mailtool", "external_id": "u1",
            "campaign_id": "c", "effective_at": T0.isoformat(), "actor": "sync"}
    decision = when_engagement_reported_unsubscribe_party(EngagementKind(kind), data)
    assert decision is not None
    expected = ConsentChannel.NEWSLETTER if channel == "newsletter" else ConsentChannel.PHONE
    assert (decision.channel, decision.external_id, decision.effective_at) == (expected, "u1", T0)
    assert when_engagement_reported_unsubscribe_party(EngagementKind.OPENED, data) is None
