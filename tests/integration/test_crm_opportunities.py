"""Opportunities through the CRM on every store: each command, refusals that store nothing, reads."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from crmcore import (
    CRM,
    ConcurrentUpdateError,
    CurrencyMismatch,
    ForecastCategory,
    IllegalTransition,
    InvalidInput,
    Money,
    OpportunityNotFound,
    OpportunityStatus,
    PartyMerged,
    PartyNotFound,
    Pipeline,
    PipelineStage,
)

CLOSE = date(2027, 3, 31)


def prospect(crm: CRM, name: str = "Ada") -> UUID:
    return crm.register_party(kind="person", name=name, stage="prospect", actor="u")


def open_one(crm: CRM, party: UUID | None = None, **fields: object) -> UUID:
    given: dict[str, object] = {
        "title": "Licences", "value": "12000", "currency": "EUR", "expected_close": CLOSE,
        "owner": "ann", "actor": "u",
    }
    return crm.open_opportunity(party or prospect(crm), **{**given, **fields})  # type: ignore[arg-type]


def test_an_opportunity_opens_for_a_prospect_at_the_default_pipelines_first_stage(crm: CRM) -> None:
    party = prospect(crm)
    view = crm.get_opportunity(open_one(crm, party))
    assert (view.party_id, view.title, view.owner) == (party, "Licences", "ann")
    assert view.value == Money.of("12000.00", "EUR")
    assert (view.pipeline, view.stage, view.probability) == ("default", "first contact", 10)
    assert (view.category, view.status, view.expected_close) == (ForecastCategory.PIPELINE,
                                                                 OpportunityStatus.OPEN, CLOSE)


@pytest.mark.parametrize(("kind", "stage"), [("organization", "target"), ("person", "customer")])
def test_targets_and_customers_can_have_opportunities(crm: CRM, kind: str, stage: str) -> None:
    party = crm.register_party(kind=kind, name="Acme", stage=stage, actor="u")
    assert crm.get_opportunity(open_one(crm, party)).party_id == party


@pytest.mark.parametrize("stage", ["suspect", "lead"])
def test_suspects_and_leads_cannot_have_opportunities_and_nothing_is_stored(crm: CRM, stage: str) -> None:
    party = crm.register_party(kind="person", name="Ada", stage=stage, actor="u")
    before = crm.position
    with pytest.raises(IllegalTransition):
        open_one(crm, party)
    assert crm.position == before


def test_a_disqualified_party_cannot_have_an_opportunity(crm: CRM) -> None:
    party = prospect(crm)
    crm.disqualify(party, reason="no fit", actor="u")
    with pytest.raises(IllegalTransition):
        open_one(crm, party)


def test_a_party_merged_into_another_is_refused_naming_its_survivor(crm: CRM) -> None:
    survivor, loser = prospect(crm, "Ada"), prospect(crm, "Ada L.")
    crm.merge(survivor, loser, actor="u", reason="same person")
    before = crm.position
    with pytest.raises(PartyMerged) as error:
        open_one(crm, loser)
    assert error.value.survivor_id == survivor == crm.resolve(loser)
    assert crm.position == before


def test_an_unknown_party_is_refused(crm: CRM) -> None:
    with pytest.raises(PartyNotFound):
        open_one(crm, uuid4())


@pytest.mark.parametrize("fields", [
    {"value": "-1"}, {"value": 1.5}, {"currency": "ZZZ"}, {"currency": None}, {"title": ""},
    {"expected_close": "someday"}, {"pipeline": "enterprise"}, {"stage": "proposl"}, {"stage": "won"},
    {"effective_at": datetime(2026, 1, 1)}, {"value": Money.of(1, "USD")},
])
def test_bad_opening_input_is_refused_and_nothing_is_stored(crm: CRM, fields: dict[str, object]) -> None:
    party = prospect(crm)
    before = crm.position
    with pytest.raises((InvalidInput, IllegalTransition)):
        open_one(crm, party, **fields)
    assert crm.position == before


def test_every_command_records_its_event_and_the_history_reads_back(crm: CRM) -> None:
    opp = open_one(crm)
    crm.move_stage(opp, stage="needs analysis", actor="u")
    crm.reestimate(opp, value=Money.of("15000", "EUR"), actor="u")
    crm.move_close_date(opp, expected_close=date(2027, 4, 30), actor="u")
    crm.change_owner(opp, owner="bob", actor="u")
    crm.override_probability(opp, probability=55, actor="u")
    crm.lose(opp, reasons=["price", "Timing"], actor="u")
    crm.reopen_opportunity(opp, stage="proposal", reason="they called back", actor="u")
    view = crm.win(opp, reasons=["best fit"], actor="u")
    assert [e.event for e in crm.opportunity_timeline(opp)] == [
        "Opened", "StageMoved", "ValueReestimated", "CloseDateMoved", "OwnerChanged",
        "ProbabilityOverridden", "Lost", "Reopened", "Won",
    ]
    assert (view.status, view.probability, view.category) == (
        OpportunityStatus.WON, 100, ForecastCategory.CLOSED)
    assert (view.value.amount, view.owner, view.expected_close) == (
        Decimal("15000.00"), "bob", date(2027, 4, 30))
    assert view.reasons == ["best fit"]
    lost = crm.get_opportunity(opp, version=7)
    assert (lost.status, lost.probability, lost.category) == (
        OpportunityStatus.LOST, 0, ForecastCategory.OMITTED)
    assert lost.reasons == ["price", "timing"]


def test_a_stage_move_resets_an_overridden_probability(crm: CRM) -> None:
    opp = open_one(crm)
    crm.override_probability(opp, probability=33, actor="u")
    assert crm.move_stage(opp, stage="proposal", actor="u").probability == 60


def test_every_close_date_move_is_kept_in_order(crm: CRM) -> None:
    opp = open_one(crm)
    dates = [date(2027, 5, 1), date(2027, 2, 1), date(2027, 6, 1)]
    for moved in dates:
        crm.move_close_date(opp, expected_close=moved, actor="u")
    history = crm.get_opportunity(opp).close_date_history
    assert [h.expected_close for h in history] == dates
    assert [h.previous for h in history] == [CLOSE, *dates[:-1]]


@pytest.mark.parametrize(("command", "fields"), [
    ("move_stage", {"stage": "proposal"}),
    ("reestimate", {"value": "1", "currency": "EUR"}),
    ("move_close_date", {"expected_close": date(2027, 9, 1)}),
    ("change_owner", {"owner": "bob"}),
    ("override_probability", {"probability": 90}),
    ("win", {}),
    ("lose", {"reasons": ["price"]}),
])
def test_a_closed_opportunity_refuses_changes_and_nothing_is_stored(
    crm: CRM, command: str, fields: dict[str, object],
) -> None:
    opp = open_one(crm)
    crm.win(opp, actor="u")
    before = crm.position
    with pytest.raises(IllegalTransition):
        getattr(crm, command)(opp, actor="u", **fields)
    assert crm.position == before


@pytest.mark.parametrize(("command", "fields"), [
    ("move_stage", {"stage": "negotation"}),
    ("move_stage", {"stage": "lost"}),
    ("reestimate", {"value": "-5", "currency": "EUR"}),
    ("reestimate", {"value": "5", "currency": "USD"}),
    ("override_probability", {"probability": 101}),
    ("override_probability", {"probability": "high"}),
    ("lose", {"reasons": []}),
    ("lose", {"reasons": ["too expensive"]}),
    ("reopen_opportunity", {"reason": "open already"}),
    ("change_owner", {"owner": ""}),
])
def test_a_refused_command_raises_a_typed_error_and_stores_nothing(
    crm: CRM, command: str, fields: dict[str, object],
) -> None:
    opp = open_one(crm)
    before = crm.position
    with pytest.raises((InvalidInput, IllegalTransition)):
        getattr(crm, command)(opp, actor="u", **fields)
    assert crm.position == before
    assert crm.get_opportunity(opp).version == 1


def test_an_unknown_lost_reason_suggests_the_closest_configured_one(crm: CRM) -> None:
    opp = open_one(crm)
    with pytest.raises(InvalidInput, match="did you mean 'competitor'"):
        crm.lose(opp, reasons=["competitors"], actor="u")


def test_a_reestimate_in_another_currency_is_a_currency_mismatch(crm: CRM) -> None:
    with pytest.raises(CurrencyMismatch):
        crm.reestimate(open_one(crm), value=Money.of(1, "USD"), actor="u")


def test_reopening_defaults_to_the_stage_it_closed_from(crm: CRM) -> None:
    opp = open_one(crm, stage="negotiation")
    crm.lose(opp, reasons=["no decision"], actor="u")
    view = crm.reopen_opportunity(opp, reason="back on", actor="u")
    assert (view.status, view.stage, view.probability, view.reasons) == (
        OpportunityStatus.OPEN, "negotiation", 80, [])


def test_an_unknown_opportunity_is_not_found(crm: CRM) -> None:
    with pytest.raises(OpportunityNotFound):
        crm.get_opportunity(uuid4())
    with pytest.raises(OpportunityNotFound):
        crm.move_stage(uuid4(), stage="proposal", actor="u")
    with pytest.raises(OpportunityNotFound):
        crm.get_opportunity(prospect(crm))  # a party is not an opportunity


def test_an_expected_version_that_moved_on_is_refused(crm: CRM) -> None:
    opp = open_one(crm)
    crm.change_owner(opp, owner="bob", actor="u", expected_version=1)
    with pytest.raises(ConcurrentUpdateError):
        crm.change_owner(opp, owner="cy", actor="u", expected_version=1)
    assert crm.get_opportunity(opp).owner == "bob"


def test_effective_times_are_kept_and_must_not_go_back(crm: CRM) -> None:
    then = datetime.now(UTC) - timedelta(days=10)
    opp = open_one(crm, effective_at=then)
    assert crm.get_opportunity(opp).opened_at == then
    with pytest.raises(InvalidInput):
        crm.win(opp, actor="u", effective_at=then - timedelta(days=1))
    closed = crm.win(opp, actor="u", effective_at=then + timedelta(days=2))
    assert closed.closed_at == then + timedelta(days=2)


def test_the_view_lists_opportunities_by_party_and_status(crm: CRM) -> None:
    ada, bea = prospect(crm, "Ada"), prospect(crm, "Bea")
    first, second, third = open_one(crm, ada), open_one(crm, ada), open_one(crm, bea)
    crm.lose(second, reasons=["price"], actor="u")
    assert {o.id for o in crm.opportunities(ada)} == {first, second}
    assert [o.id for o in crm.opportunities(status="lost")] == [second]
    assert {o.id for o in crm.opportunities(status="open")} == {first, third}
    row = next(o for o in crm.opportunities(ada) if o.id == second)
    assert (row.stage, row.probability, row.category) == ("lost", 0, ForecastCategory.OMITTED)
    with pytest.raises(InvalidInput):
        crm.opportunities(status="pending")


def test_the_view_of_a_survivor_includes_the_opportunities_of_parties_merged_into_it(crm: CRM) -> None:
    survivor, loser = prospect(crm, "Ada"), prospect(crm, "Ada L.")
    kept, moved = open_one(crm, survivor), open_one(crm, loser)
    crm.merge(survivor, loser, actor="u", reason="same person")
    assert {o.id for o in crm.opportunities(survivor)} == {kept, moved}


def test_the_view_rebuilt_from_zero_equals_the_one_kept_up_to_date(crm: CRM) -> None:
    opp = open_one(crm)
    crm.move_stage(opp, stage="proposal", actor="u")
    crm.reestimate(opp, value="5", currency="EUR", actor="u")
    kept = crm.opportunities()
    crm.rebuild_view("opportunities")
    assert crm.opportunities() == kept
    assert kept[0].value == Money.of(5, "EUR")


def test_a_long_history_reads_the_same_through_a_snapshot(crm: CRM) -> None:
    opp = open_one(crm)
    for i in range(120):
        crm.reestimate(opp, value=Decimal(1000 + i), currency="EUR", actor="u")
    crm.move_stage(opp, stage="proposal", actor="u")
    view = crm.get_opportunity(opp)
    assert view.version == 122
    assert view.value == Money.of(1119, "EUR")
    assert view.category is ForecastCategory.BEST_CASE
    assert crm.get_opportunity(opp, version=50).value == Money.of(1048, "EUR")


def test_a_crm_with_its_own_pipelines_and_lost_reasons(store_url: str) -> None:
    renewals = Pipeline("renewals", (
        PipelineStage("due", 50, ForecastCategory.BEST_CASE),
        PipelineStage("confirmed", 90, ForecastCategory.COMMIT),
        PipelineStage("renewed", 100, ForecastCategory.CLOSED),
        PipelineStage("churned", 0, ForecastCategory.OMITTED),
    ))
    with CRM(store_url, pipelines=[renewals], lost_reasons=["moved away", "price"]) as crm:
        opp = open_one(crm, value="10", currency="JPY")
        assert crm.get_opportunity(opp).stage == "due"
        assert crm.move_stage(opp, stage="confirmed", actor="u").category is ForecastCategory.COMMIT
        with pytest.raises(InvalidInput):
            crm.lose(opp, reasons=["competitor"], actor="u")
        lost = crm.lose(opp, reasons=["Moved away"], actor="u")
        assert (lost.stage, lost.reasons) == ("churned", ["moved away"])


@pytest.mark.parametrize("options", [
    {"pipelines": []}, {"lost_reasons": []}, {"lost_reasons": ["price", "Price"]},
    {"pipelines": ["default"]},
])
def test_bad_opportunity_settings_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        CRM("memory:", **options)  # type: ignore[arg-type]
