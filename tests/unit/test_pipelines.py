"""Pipelines: ordered stages with default probabilities and forecast categories, won and lost last."""

from __future__ import annotations

from uuid import uuid4

import pytest

from crmcore import (
    DEFAULT_LOST_REASONS,
    DEFAULT_PIPELINE,
    ForecastCategory,
    IllegalTransition,
    InvalidInput,
    Pipeline,
    PipelineStage,
)
from crmcore.policies.pipelines import (
    OpportunityStatus,
    check_can_change,
    check_can_reopen,
    check_lost_reasons,
    check_party_can_have_opportunity,
    pipeline_named,
)
from crmcore.values import Stage

C = ForecastCategory
WON, LOST = PipelineStage("won", 100, C.CLOSED), PipelineStage("lost", 0, C.OMITTED)


def test_the_default_pipeline_has_the_documented_numbers_and_categories() -> None:
    assert [(s.name, s.probability, s.category) for s in DEFAULT_PIPELINE.stages] == [
        ("first contact", 10, C.PIPELINE), ("qualification", 20, C.PIPELINE),
        ("needs analysis", 40, C.BEST_CASE), ("proposal", 60, C.BEST_CASE), ("negotiation", 80, C.COMMIT),
        ("won", 100, C.CLOSED), ("lost", 0, C.OMITTED),
    ]
    assert DEFAULT_PIPELINE.won.name == "won"
    assert DEFAULT_PIPELINE.lost.name == "lost"
    assert len(DEFAULT_PIPELINE.open_stages) == 5


def test_a_pipeline_with_its_own_stages_is_accepted() -> None:
    pipeline = Pipeline("renewals", (PipelineStage("renewal due", 70, C.COMMIT), WON, LOST))
    assert pipeline.stage("Renewal Due").probability == 70


@pytest.mark.parametrize("stages", [
    (WON, LOST),
    (PipelineStage("a", 10, C.PIPELINE), LOST, WON),
    (PipelineStage("a", 10, C.PIPELINE), PipelineStage("A", 20, C.PIPELINE), WON, LOST),
    (PipelineStage("a", 10, C.PIPELINE), PipelineStage("won", 90, C.CLOSED), LOST),
    (PipelineStage("a", 10, C.PIPELINE), WON, PipelineStage("lost", 5, C.OMITTED)),
    (PipelineStage("a", 10, C.CLOSED), WON, LOST),
], ids=["no open stage", "won after lost", "duplicate name", "won below 100", "lost above 0",
        "open stage closed"])
def test_a_badly_shaped_pipeline_is_refused(stages: tuple[PipelineStage, ...]) -> None:
    with pytest.raises(InvalidInput):
        Pipeline("bad", stages)


@pytest.mark.parametrize(("name", "probability", "category"), [
    ("", 10, "pipeline"), ("a", 101, "pipeline"), ("a", -1, "pipeline"), ("a", 10, "maybe"),
])
def test_a_bad_stage_is_refused(name: str, probability: int, category: str) -> None:
    with pytest.raises(InvalidInput):
        PipelineStage(name, probability, category)  # type: ignore[arg-type]


def test_an_unknown_stage_is_refused_suggesting_the_closest() -> None:
    with pytest.raises(InvalidInput, match="did you mean 'proposal'") as error:
        DEFAULT_PIPELINE.stage("propsal")
    assert error.value.suggestion == "proposal"  # type: ignore[attr-defined]


def test_the_won_and_lost_stages_are_not_open_stages() -> None:
    with pytest.raises(IllegalTransition, match="win"):
        DEFAULT_PIPELINE.open_stage("won")
    with pytest.raises(IllegalTransition, match="lose"):
        DEFAULT_PIPELINE.open_stage("lost")


def test_a_pipeline_is_found_by_name_ignoring_case() -> None:
    assert pipeline_named("DEFAULT", [DEFAULT_PIPELINE]) is DEFAULT_PIPELINE
    with pytest.raises(InvalidInput, match="did you mean 'default'"):
        pipeline_named("defualt", [DEFAULT_PIPELINE])


def test_lost_reasons_are_spelt_as_configured_and_given_once() -> None:
    checked = check_lost_reasons(["Price", " price", "no  budget"], DEFAULT_LOST_REASONS)
    assert checked == ["price", "no budget"]


def test_an_unknown_lost_reason_is_refused_suggesting_the_closest() -> None:
    with pytest.raises(InvalidInput, match="did you mean 'competitor'"):
        check_lost_reasons(["competition"], DEFAULT_LOST_REASONS)


def test_losing_needs_at_least_one_reason() -> None:
    with pytest.raises(InvalidInput, match="at least one"):
        check_lost_reasons([], DEFAULT_LOST_REASONS)


def test_a_closed_opportunity_changes_only_by_reopening() -> None:
    check_can_change(OpportunityStatus.OPEN, "move it")
    for status in (OpportunityStatus.WON, OpportunityStatus.LOST):
        with pytest.raises(IllegalTransition):
            check_can_change(status, "move it")
        check_can_reopen(status)
    with pytest.raises(IllegalTransition):
        check_can_reopen(OpportunityStatus.OPEN)


@pytest.mark.parametrize("stage", list(Stage))
def test_only_prospects_targets_and_customers_can_have_opportunities(stage: Stage) -> None:
    if stage in (Stage.PROSPECT, Stage.TARGET, Stage.CUSTOMER):
        check_party_can_have_opportunity(uuid4(), stage)
    else:
        with pytest.raises(IllegalTransition):
            check_party_can_have_opportunity(uuid4(), stage)
