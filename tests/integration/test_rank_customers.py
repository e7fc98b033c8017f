"""Ranking customers by the targeting score on every store: order, components and their inputs, the best N,
as of a past moment, segment restriction, value field, currency, and bad input."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from crmcore import (
    CRM,
    CrmError,
    CustomerRanking,
    FieldNotDefined,
    InvalidInput,
    ScoreWeights,
)

#: The moment the rankings are read at; every event of a test happens before it unless it says otherwise.
AT = datetime(2025, 6, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)
START = AT - 1000 * DAY


def customer(crm: CRM, name: str, converted: datetime = START, **extra: Any) -> UUID:
    """A prospect registered at START, converted at ``converted`` (a purchase without an opportunity)."""
    party = crm.register_party(kind="person", name=name, stage="prospect", actor="u", effective_at=START,
                               **extra)
    crm.convert(party, actor="u", effective_at=converted)
    return party


def win(crm: CRM, party: UUID, amount: str, at: datetime, currency: str = "EUR") -> UUID:
    deal = crm.open_opportunity(party, title="Deal", value=amount, currency=currency,
                                expected_close=date(2030, 1, 31), owner="rep", actor="rep",
                                effective_at=at - DAY)
    crm.win(deal, actor="rep", effective_at=at)
    return deal


def interact(crm: CRM, party: UUID, at: datetime) -> None:
    task = crm.plan_task(kind="call", subject="Call", assignees=["ann"], party_id=party, actor="u",
                         deadline="2030-01-31", effective_at=at)
    crm.complete_task(task, by="ann", actor="u", effective_at=at)


def by_name(ranking: CustomerRanking) -> dict[str, Any]:
    return {c.name: c for c in ranking.customers}


def curve(count: int, scale: int) -> float:
    return round(100 * (1 - math.exp(-count / scale)), 1)


def halving(days: float) -> float:
    return round(100 * 0.5 ** (days / 180), 1)


# ---------------------------------------------------------------------- order and components


def test_customers_rank_by_the_documented_score_with_each_component_and_its_inputs(crm: CRM) -> None:
    ada = customer(crm, "Ada")
    for days in (30, 20, 10):
        win(crm, ada, "1000", AT - days * DAY)
    for days in range(6):
        interact(crm, ada, AT - (days + 1) * 40 * DAY)  # 40 to 240 days ago: all within the year
    interact(crm, ada, AT - 400 * DAY)  # over a year ago: not counted
    bob = customer(crm, "Bob", converted=AT - 400 * DAY)
    carl = customer(crm, "Carl", converted=AT - 900 * DAY)
    win(crm, carl, "5000", AT - 800 * DAY)  # won before the 730 days: recency only
    crm.register_party(kind="person", name="Lead", stage="lead", actor="u", effective_at=START)

    ranking = crm.rank_customers(at=AT)

    assert [c.name for c in ranking.customers] == ["Ada", "Bob", "Carl"]
    assert [c.rank for c in ranking.customers] == [1, 2, 3]
    assert (ranking.scored_at, ranking.at, ranking.currency, ranking.considered) == (AT, AT, "EUR", 3)
    rows = by_name(ranking)
    first = rows["Ada"]
    assert first.party_id == ada
    assert (first.wins, first.interactions, first.value_amount) == (3, 6, 1000 * 3)
    assert first.last_purchase_at == AT - 10 * DAY
    assert float(first.recency) == halving(10)
    assert float(first.frequency) == curve(3, 3) == 63.2
    assert float(first.engagement) == curve(6, 6) == 63.2
    assert float(first.value) == 100.0  # the highest of three
    expected = 0.3 * 100 * 0.5 ** (10 / 180) + 0.2 * 100 * (1 - math.exp(-1)) * 2 + 0.3 * 100
    assert float(first.score) == round(expected, 1)
    second, third = rows["Bob"], rows["Carl"]
    assert (second.party_id, third.party_id) == (bob, carl)
    assert (second.wins, second.interactions, second.value_amount) == (0, 0, 0)
    assert second.last_purchase_at == AT - 400 * DAY
    assert (float(second.recency), float(second.frequency), float(second.engagement)) == (halving(400), 0, 0)
    assert float(second.value) == float(third.value) == 25.0  # tied at 0: the mid-rank of the lower two
    assert third.last_purchase_at == AT - 800 * DAY  # the win, later than the conversion
    assert (third.wins, third.value_amount) == (0, 0)


def test_equal_scores_rank_by_party_id(crm: CRM) -> None:
    parties = [customer(crm, f"Twin {i}") for i in range(5)]
    ranking = crm.rank_customers(at=AT)
    assert len({c.score for c in ranking.customers}) == 1
    assert [c.party_id for c in ranking.customers] == sorted(parties, key=str)


def test_weights_change_the_score_only_through_the_components(crm: CRM) -> None:
    ada, bob = customer(crm, "Ada", converted=AT - 300 * DAY), customer(crm, "Bob", converted=AT - 10 * DAY)
    win(crm, ada, "900", AT - 300 * DAY)
    value_only = crm.rank_customers(at=AT, weights=ScoreWeights(recency=0, frequency=0, engagement=0,
                                                                value=1))
    assert [c.party_id for c in value_only.customers] == [ada, bob]
    assert all(c.score == c.value for c in value_only.customers)
    recency_only = crm.rank_customers(at=AT, weights=ScoreWeights(recency=2, frequency=0, engagement=0,
                                                                  value=0))
    assert [c.party_id for c in recency_only.customers] == [bob, ada]
    assert all(c.score == c.recency for c in recency_only.customers)
    assert recency_only.weights == {"recency": 2, "frequency": 0, "engagement": 0, "value": 0}


def test_the_best_n_are_the_head_of_the_whole_ranking_with_values_ranked_among_all(crm: CRM) -> None:
    """The domain's 150 of 1,000, on 24 customers: the best 4."""
    for i in range(24):
        party = customer(crm, f"C{i:02}", converted=AT - (20 + 31 * i) * DAY)
        if i % 3 == 0:
            win(crm, party, str(100 * (i + 1)), AT - (10 + 7 * i) * DAY)
    everyone = crm.rank_customers(at=AT)
    best = crm.rank_customers(at=AT, limit=4)
    assert (everyone.considered, best.considered) == (24, 24)
    assert len(everyone.customers) == 24
    assert best.customers == everyone.customers[:4]
    scores = [c.score for c in everyone.customers]
    assert scores == sorted(scores, reverse=True)
    assert crm.rank_customers(at=AT, limit=0).customers == []
    assert len(crm.rank_customers(at=AT, limit=100).customers) == 24


def test_a_live_ranking_reads_the_customers_as_they_stand_now(crm: CRM) -> None:
    ada = customer(crm, "Ada", converted=datetime.now(UTC) - 2 * DAY)
    ranking = crm.rank_customers()
    (row,) = ranking.customers
    assert ranking.at is None
    assert row.party_id == ada
    assert float(row.recency) == pytest.approx(halving(2), abs=0.1)
    assert ranking.scored_at - datetime.now(UTC) < timedelta(minutes=1)


# ---------------------------------------------------------------------- as of a past moment


def test_a_ranking_as_of_a_past_moment_is_what_it_was_then_and_as_known_then(crm: CRM) -> None:
    ada, bob = customer(crm, "Ada"), customer(crm, "Bob")
    win(crm, ada, "500", AT - 50 * DAY)
    interact(crm, bob, AT - 5 * DAY)
    then = crm.rank_customers(at=AT)
    recorded_by = datetime.now(UTC)
    # later: Bob wins big, a new customer arrives, Ada interacts
    win(crm, bob, "9000", AT + 10 * DAY)
    customer(crm, "Carl", converted=AT + 20 * DAY)
    interact(crm, ada, AT + 30 * DAY)
    assert crm.rank_customers(at=AT) == then
    later = crm.rank_customers(at=AT + 40 * DAY)
    assert later.customers[0].name == "Bob"
    assert later.considered == 3
    # a win back-dated before AT, recorded now, changes the past - unless read as known before it
    win(crm, bob, "100", AT - 20 * DAY)
    changed = crm.rank_customers(at=AT)
    assert by_name(changed)["Bob"].wins == 1
    as_known = crm.rank_customers(at=AT, known_at=recorded_by)
    assert as_known.customers == then.customers
    assert as_known.known_at == recorded_by


# ---------------------------------------------------------------------- segment, value field, currency


def test_segment_members_restrict_the_ranking_and_the_value_percentiles(crm: CRM) -> None:
    ada, bob, carl = (customer(crm, n) for n in ("Ada", "Bob", "Carl"))
    win(crm, ada, "100", AT - 10 * DAY)
    win(crm, bob, "200", AT - 10 * DAY)
    win(crm, carl, "300", AT - 10 * DAY)
    lead = crm.register_party(kind="person", name="Lead", stage="lead", actor="u", effective_at=START)
    ranking = crm.rank_customers(at=AT, segment_members=[ada, str(bob), lead, uuid4()])
    assert {c.party_id for c in ranking.customers} == {ada, bob}
    assert ranking.considered == 2
    rows = by_name(ranking)
    assert (float(rows["Ada"].value), float(rows["Bob"].value)) == (0.0, 100.0)
    assert crm.rank_customers(at=AT, segment_members=()).customers == []


def test_a_number_field_can_stand_for_the_value(crm: CRM) -> None:
    crm.define_field(name="annual_revenue", kind="number", minimum=0, actor="admin", effective_at=START)
    ada = customer(crm, "Ada")
    bob = customer(crm, "Bob")
    carl = customer(crm, "Carl")
    win(crm, carl, "99999", AT - 10 * DAY)  # won value does not count with a value field
    crm.set_fields(ada, values={"annual_revenue": "2500000"}, actor="u", effective_at=AT - DAY)
    crm.set_fields(bob, values={"annual_revenue": "1000.5"}, actor="u", effective_at=AT - DAY)
    ranking = crm.rank_customers(at=AT, value_field="annual_revenue",
                                 weights=ScoreWeights(recency=0, frequency=0, engagement=0, value=1))
    assert [c.party_id for c in ranking.customers] == [ada, bob, carl]
    assert [c.value_amount for c in ranking.customers] == [2500000, 1000.5, 0]
    assert [float(c.value) for c in ranking.customers] == [100.0, 50.0, 0.0]
    assert (ranking.value_field, ranking.currency) == ("annual_revenue", None)


def test_value_reads_the_main_currency_unless_told_and_other_currencies_do_not_count(crm: CRM) -> None:
    eur, usd, both = customer(crm, "Eur"), customer(crm, "Usd"), customer(crm, "Both")
    win(crm, eur, "1000", AT - 10 * DAY)
    win(crm, usd, "5000", AT - 10 * DAY, currency="USD")
    win(crm, both, "200", AT - 10 * DAY)
    win(crm, both, "100", AT - 9 * DAY, currency="USD")
    main = crm.rank_customers(at=AT)
    assert main.currency == "USD"  # 5,100 won in USD, 1,200 in EUR
    assert {c.name: c.value_amount for c in main.customers} == {"Usd": 5000, "Both": 100, "Eur": 0}
    assert {c.name: c.wins for c in main.customers} == {"Usd": 1, "Both": 2, "Eur": 1}
    euro = crm.rank_customers(at=AT, currency="eur")
    assert euro.currency == "EUR"
    assert {c.name: c.value_amount for c in euro.customers} == {"Usd": 0, "Both": 200, "Eur": 1000}
    assert euro.customers[0].name == "Eur"


def test_with_nothing_won_there_is_no_currency_and_values_tie(crm: CRM) -> None:
    customer(crm, "Ada")
    customer(crm, "Bob")
    ranking = crm.rank_customers(at=AT)
    assert ranking.currency is None
    assert {float(c.value) for c in ranking.customers} == {50.0}
    assert crm.rank_customers(at=START - DAY).customers == []


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("arguments", "error"), [
    ({"limit": -1}, InvalidInput),
    ({"limit": True}, InvalidInput),
    ({"limit": "3"}, InvalidInput),
    ({"weights": {"recency": 1}}, InvalidInput),
    ({"currency": "XXX"}, InvalidInput),
    ({"currency": 978}, InvalidInput),
    ({"currency": "EUR", "value_field": "score"}, InvalidInput),
    ({"value_field": "unknown"}, FieldNotDefined),
    ({"value_field": "sector"}, InvalidInput),
    ({"value_field": ""}, InvalidInput),
    ({"at": datetime(2025, 1, 1)}, InvalidInput),
    ({"at": "2025-01-01"}, InvalidInput),
    ({"known_at": AT}, InvalidInput),
    ({"at": AT, "known_at": datetime(2025, 1, 1)}, InvalidInput),
    ({"segment_members": "not ids"}, InvalidInput),
    ({"segment_members": ["not an id"]}, InvalidInput),
    ({"segment_members": 7}, InvalidInput),
])
def test_bad_input_is_a_typed_error_and_stores_nothing(
    crm: CRM, arguments: dict[str, Any], error: type[CrmError],
) -> None:
    crm.define_field(name="sector", kind="text", actor="admin", effective_at=START)
    customer(crm, "Ada")
    position = crm.position
    with pytest.raises(error):
        crm.rank_customers(**arguments)
    assert crm.position == position


def test_bad_weights_are_refused_when_built() -> None:
    with pytest.raises(InvalidInput):
        ScoreWeights(recency=-1)
    with pytest.raises(InvalidInput):
        ScoreWeights(recency=0, frequency=0, engagement=0, value=0)
