"""The quarterly clean-up policy and the run it records: pure, no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from crmcore.aggregates.cleanup import CleanUp
from crmcore.exceptions import EffectiveTimeOutOfOrder, IllegalTransition
from crmcore.policies.cleanup import (
    NEWSLETTER_REASON,
    STALE_REASON,
    Candidate,
    CleanUpAction,
    CleanUpKind,
    CleanUpPolicy,
    StaleAction,
    plan_clean_up,
)

T0 = datetime(2026, 6, 30, 23, 59, tzinfo=UTC)


def test_a_stale_party_moves_to_the_newsletter_list_by_default_or_is_set_aside_or_left() -> None:
    stale = Candidate("p1", owner="giulia", stale=True)
    assert plan_clean_up([stale]) == [CleanUpAction("p1", CleanUpKind.NEWSLETTER, NEWSLETTER_REASON)]
    assert plan_clean_up([stale], CleanUpPolicy(stale_action=StaleAction.SET_ASIDE)) == [
        CleanUpAction("p1", CleanUpKind.SET_ASIDE, STALE_REASON)]
    assert plan_clean_up([stale], CleanUpPolicy(stale_action="none")) == []


def test_a_party_already_set_aside_is_not_set_aside_again() -> None:
    assert plan_clean_up([Candidate("p1", stale=True, set_aside=True)]) == []


def test_undelivered_addresses_are_suppressed_and_incomplete_owned_records_get_a_task() -> None:
    candidate = Candidate("p1", owner="marco", undelivered=("b@x.it", "a@x.it", "a@x.it"),
                          missing=("emails", "vat_number"))
    assert plan_clean_up([candidate]) == [
        CleanUpAction("p1", CleanUpKind.COMPLETION_TASK, "incomplete record", ("emails", "vat_number")),
        CleanUpAction("p1", CleanUpKind.SUPPRESS_ADDRESS, "undeliverable", ("a@x.it",)),
        CleanUpAction("p1", CleanUpKind.SUPPRESS_ADDRESS, "undeliverable", ("b@x.it",)),
    ]
    assert plan_clean_up([candidate], CleanUpPolicy(suppress_bounced=False, completion_tasks=False)) == []


def test_an_incomplete_record_without_an_owner_gets_no_task() -> None:
    assert plan_clean_up([Candidate("p1", missing=("emails",))]) == []


def test_a_party_in_an_open_negotiation_is_left_alone_unless_the_policy_says_otherwise() -> None:
    busy = Candidate("p1", owner="giulia", stale=True, open_opportunities=1, undelivered=("a@x.it",),
                     missing=("phones",))
    assert plan_clean_up([busy]) == []
    told = plan_clean_up([busy], CleanUpPolicy(include_open_opportunities=True))
    assert {a.kind for a in told} == {CleanUpKind.NEWSLETTER, CleanUpKind.SUPPRESS_ADDRESS}


def test_a_party_the_run_sets_aside_gets_no_completion_task() -> None:
    stale = Candidate("p1", owner="giulia", stale=True, missing=("phones",))
    assert [a.kind for a in plan_clean_up([stale])] == [CleanUpKind.NEWSLETTER]
    kept = plan_clean_up([stale], CleanUpPolicy(stale_action="none"))
    assert kept == [CleanUpAction("p1", CleanUpKind.COMPLETION_TASK, "incomplete record", ("phones",))]


def test_a_bad_policy_is_refused() -> None:
    with pytest.raises(ValidationError):
        CleanUpPolicy(stale_action="delete")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        CleanUpPolicy(version=0)
    with pytest.raises(ValidationError):
        CleanUpPolicy(surprise=True)  # type: ignore[call-arg]


candidates = st.builds(
    Candidate,
    party_id=st.sampled_from([f"p{i}" for i in range(8)]),
    owner=st.sampled_from([None, "giulia", "marco"]),
    stale=st.booleans(), set_aside=st.booleans(), open_opportunities=st.integers(0, 2),
    undelivered=st.lists(st.sampled_from(["a@x.it", "b@x.it"]), max_size=3).map(tuple),
    missing=st.lists(st.sampled_from(["emails", "phones", "owner"]), max_size=2, unique=True).map(tuple),
)


@given(st.lists(candidates, max_size=12), st.booleans(), st.sampled_from(list(StaleAction)))
def test_the_plan_never_touches_a_party_in_negotiation_unless_told(
    given_candidates: list[Candidate], include: bool, stale_action: StaleAction,
) -> None:
    policy = CleanUpPolicy(include_open_opportunities=include, stale_action=stale_action)
    touched = {a.party_id for a in plan_clean_up(given_candidates, policy)}
    busy = {c.party_id for c in given_candidates if c.open_opportunities}
    idle = {c.party_id for c in given_candidates if not c.open_opportunities}
    if not include:
        assert not touched & (busy - idle)
    for action in plan_clean_up(given_candidates, policy):
        assert action.kind is not CleanUpKind.COMPLETION_TASK or any(
            c.party_id == action.party_id and c.owner and c.missing for c in given_candidates)


def a_run(*actions: CleanUpAction) -> CleanUp:
    return CleanUp.run(policy=CleanUpPolicy().recorded(), hygiene_policy={"name": "hygiene", "version": 1},
                       counts_before={"stale": 2}, counts_after={"stale": 0}, actions=actions,
                       tasks={"p2": uuid4()}, actor="ops", effective_at=T0)


def test_a_run_records_its_policies_counts_actions_and_tasks_in_one_event() -> None:
    moved = CleanUpAction("p1", CleanUpKind.NEWSLETTER, NEWSLETTER_REASON)
    task = CleanUpAction("p2", CleanUpKind.COMPLETION_TASK, "incomplete record", ("emails",))
    run = a_run(moved, task)
    (ran,) = run.collect_events()
    assert isinstance(ran, CleanUp.Ran)
    assert ran.policy["name"] == "clean_up"
    assert ran.policy["version"] == 1
    assert ran.counts_before == {"stale": 2}
    assert ran.counts_after == {"stale": 0}
    assert [CleanUpAction.from_json(a) for a in ran.actions] == [moved, task]
    assert run.parties == ["p1", "p2"]
    assert run.actions_on("p2") == [task]


def test_a_party_is_reverted_once_and_only_a_party_the_run_touched() -> None:
    moved = CleanUpAction("p1", CleanUpKind.NEWSLETTER, NEWSLETTER_REASON)
    run = a_run(moved)
    run.collect_events()
    with pytest.raises(IllegalTransition):
        run.revert(party_id="p9", undone=[], actor="ops", effective_at=T0)
    with pytest.raises(EffectiveTimeOutOfOrder):
        run.revert(party_id="p1", undone=[moved], actor="ops", effective_at=T0 - timedelta(days=1))
    assert run.collect_events() == []
    run.revert(party_id="p1", undone=[moved], actor="ops", reason="worked after all", effective_at=T0)
    with pytest.raises(IllegalTransition):
        run.revert(party_id="p1", undone=[moved], actor="ops", effective_at=T0)
    (reverted,) = run.collect_events()
    assert isinstance(reverted, CleanUp.Reverted)
    assert reverted.party_id == "p1"
    assert run.reverted == {"p1": [moved]}
