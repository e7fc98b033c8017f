"""Campaign results, redemption, ROI and attribution through the CRM on every store, on a hand-computed
example: now, as of past moments, as known then, over periods; and the opportunity's link to a campaign."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from crmcore import CRM, CampaignNotFound, InvalidInput, Money
from crmcore.aggregates.campaign import Campaign
from crmcore.models import CampaignResults
from crmcore.projections.base import RecordView, fold_records
from crmcore.testing.campaigns import engagement_report, running_campaign

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
H, DAY = timedelta(hours=1), timedelta(days=1)
L1, L2 = "https://example.com/offer", "https://example.com/shop"


@dataclass
class Spring:
    """The example: campaign ``n`` (newsletter to A B C D E G, sent to all but E; calls to A and F; cost
    200 EUR) and an older campaign ``m`` that touched A long ago and B three weeks before; opportunities
    ``oa`` (A, won 1000 EUR), ``ob`` (B, open), ``of`` (F, opened from ``n``, won 300 USD), ``od`` (D)."""

    n: UUID
    m: UUID
    parties: dict[str, UUID]
    oa: UUID
    ob: UUID
    of: UUID
    od: UUID


def report(crm: CRM, kind: str, campaign: UUID, party: UUID, at: datetime, **fields: Any) -> None:
    crm._save(engagement_report(kind, campaign_id=campaign, party_id=party, at=at, **fields))


def spring(crm: CRM) -> Spring:
    p = {name: crm.register_party(kind="person", name=name, stage="prospect", actor="u",
                                  effective_at=T0 - 200 * DAY) for name in "ABCDEFG"}
    older = running_campaign(newsletter=[p["A"], p["B"]], at=T0 - 120 * DAY, name="Winter")
    crm._save(older)
    report(crm, "opened", older.id, p["A"], T0 - 110 * DAY)
    report(crm, "opened", older.id, p["B"], T0 - 20 * DAY)

    n = Campaign.draft(name="Spring", channels=["newsletter", "telemarketing"], segment_id=uuid4(),
                       budget=Money.of("1000", "EUR"), actor="u", effective_at=T0 - 2 * DAY)
    n.schedule(start_at=T0 - DAY, actor="u", effective_at=T0 - 2 * DAY)
    n.launch(audience_at=T0 - DAY, recipients={
        "newsletter": [[str(p[x]), f"{x}@example.com"] for x in "ABCDEG"],
        "telemarketing": [[str(p[x]), "+39 02 1234 5678"] for x in "AF"],
    }, exclusions=[[str(p["B"]), "telemarketing", "no_address", ""]],
        policy={"name": "audience", "version": 1}, actor="u", effective_at=T0 - DAY)
    n.send(recipients=[[str(p[x]), f"{x}@example.com"] for x in "ABCDG"],
           skipped=[[str(p["E"]), "suppressed"]], actor="u", effective_at=T0)
    n.record_cost(amount=Money.of("200", "EUR"), actor="u", effective_at=T0)
    crm._save(n)
    reports = [
        ("delivered", "A", T0 + H, {}), ("opened", "A", T0 + 2 * H, {}), ("opened", "A", T0 + 3 * H, {}),
        ("clicked", "A", T0 + 4 * H, {"link": L1}), ("clicked", "A", T0 + 5 * H, {"link": L2}),
        ("clicked", "B", T0 + 2 * H, {"link": L1}),
        ("soft_bounce", "C", T0 + H, {"raw_code": "421"}),
        ("soft_bounce", "C", T0 + DAY, {"raw_code": "421"}),
        ("delivered", "D", T0 + H, {}), ("unsubscribed", "D", T0 + 6 * H, {}),
        ("complaint", "D", T0 + 7 * H, {}),
        ("opened", "E", T0 + 2 * H, {}),  # never sent: counts nowhere
        ("hard_bounce", "G", T0 + H, {"raw_code": "550 5.1.1"}),
        ("called", "A", T0 + DAY, {"operator": "ann", "outcome": "no_answer"}),
        ("called", "A", T0 + 2 * DAY, {"operator": "bob", "outcome": "interested"}),
        ("called", "F", T0 + DAY, {"operator": "ann", "outcome": "not_interested"}),
    ]
    for kind, who, at, fields in reversed(reports):  # late and out of order
        report(crm, kind, n.id, p[who], at, **fields)

    def deal(who: str, value: str, at: datetime, currency: str = "EUR", **fields: Any) -> UUID:
        return crm.open_opportunity(p[who], title=f"Deal {who}", value=value, currency=currency,
                                    expected_close=date(2026, 6, 30), owner="ann", actor="u", effective_at=at,
                                    **fields)

    oa = deal("A", "1000", T0 + 3 * DAY)
    crm.win(oa, actor="u", effective_at=T0 + 10 * DAY)
    ob = deal("B", "500", T0 + DAY)
    of = deal("F", "300", T0 + 3 * DAY, currency="USD", campaign_id=n.id)
    crm.win(of, actor="u", effective_at=T0 + 5 * DAY)
    od = deal("D", "700", T0 + 2 * DAY)
    return Spring(n=n.id, m=older.id, parties=p, oa=oa, ob=ob, of=of, od=od)


def figures(r: CampaignResults) -> dict[str, Any]:
    return {k: getattr(r, k) for k in (
        "recipients", "audience", "sent", "delivered", "opened", "opens", "clicked", "clicks", "hard_bounced",
        "soft_bounced", "unsubscribed", "complained", "called", "calls", "responses", "linked_opportunities")}


def rates(r: CampaignResults) -> dict[str, Decimal | None]:
    return {k: getattr(r, k) for k in (
        "open_rate", "click_rate", "click_to_open_rate", "hard_bounce_rate", "soft_bounce_rate",
        "unsubscribe_rate", "complaint_rate", "response_rate")}


def test_every_figure_of_a_campaign_is_counted_from_its_sent_recipients(crm: CRM) -> None:
    s = spring(crm)
    r = crm.campaign_results(s.n)
    assert (r.campaign_id, r.name, r.status.value, [c.value for c in r.channels]) == (
        s.n, "Spring", "running", ["newsletter", "telemarketing"])
    assert (r.at, r.known_at, r.launched_at, r.attribution_window_days) == (None, None, T0 - DAY, 90)
    assert (r.budget, r.cost) == (Money.of("1000", "EUR"), Money.of("200", "EUR"))
    assert figures(r) == {
        "recipients": {"newsletter": 6, "telemarketing": 2}, "audience": 7, "sent": 5,
        "delivered": 3,  # A (delivered), B (a click proves it), D (delivered)
        "opened": 2, "opens": 2,  # A and B (B's click proves an open); A's two opens reported
        "clicked": 2, "clicks": 3, "hard_bounced": 1, "soft_bounced": 1, "unsubscribed": 1, "complained": 1,
        "called": 2, "calls": {"ann": {"no_answer": 1, "not_interested": 1}, "bob": {"interested": 1}},
        "responses": 2,  # A (clicked, interested), B (clicked)
        "linked_opportunities": 1,
    }
    assert rates(r) == {
        "open_rate": Decimal("0.6667"), "click_rate": Decimal("0.6667"),
        "click_to_open_rate": Decimal("1.0000"),
        "hard_bounce_rate": Decimal("0.2000"), "soft_bounce_rate": Decimal("0.2000"),
        "unsubscribe_rate": Decimal("0.3333"), "complaint_rate": Decimal("0.3333"),
        "response_rate": Decimal("0.2857"),
    }


def test_opportunities_are_credited_by_first_and_last_touch_and_the_return_is_in_the_budget_currency(
    crm: CRM,
) -> None:
    s = spring(crm)
    r = crm.campaign_results(s.n)
    credited = {o.opportunity_id: (o.linked, o.first_touch, o.last_touch) for o in r.opportunities}
    # A: only Spring touched it in the 90 days before (Winter's open is 113 days earlier); B: Winter first
    # (20 days before), Spring last; F: opened from Spring; D: nobody touched it.
    assert credited == {s.oa: (False, True, True), s.ob: (False, False, True), s.of: (True, True, True)}
    assert r.first_touch.model_dump() == {
        "opportunities": 2, "sales": 2, "won_value": {"EUR": Decimal("1000.00"), "USD": Decimal("300.00")},
        "sales_rate": Decimal("0.2857"), "roi": Decimal("4.0000")}  # (1000 - 200) / 200; USD not converted
    assert r.last_touch.model_dump() == {
        "opportunities": 3, "sales": 2, "won_value": {"EUR": Decimal("1000.00"), "USD": Decimal("300.00")},
        "sales_rate": Decimal("0.2857"), "roi": Decimal("4.0000")}
    winter = crm.campaign_results(s.m)
    assert [(o.opportunity_id, o.first_touch, o.last_touch) for o in winter.opportunities] == [
        (s.ob, True, False)]
    assert (winter.first_touch.opportunities, winter.last_touch.opportunities) == (1, 0)
    assert (winter.first_touch.roi, winter.cost.amount) == (None, Decimal(0))  # nothing spent: no return


def test_a_narrower_window_credits_only_touches_within_it(crm: CRM) -> None:
    s = spring(crm)
    r = crm.campaign_results(s.n, attribution_window_days=1)
    # A's deal opened 3 days after Spring's first touch: outside one day; B's one day after: inside, and
    # Winter's touch is too old now; F's was opened from Spring.
    assert {o.opportunity_id: (o.first_touch, o.last_touch) for o in r.opportunities} == {
        s.ob: (True, True), s.of: (True, True)}
    assert (r.first_touch.sales, r.first_touch.won_value) == (1, {"USD": Decimal("300.00")})
    assert r.first_touch.roi == Decimal("-1.0000")  # nothing won in EUR against 200 EUR spent


def test_results_as_of_a_moment_read_only_what_was_effective_by_then(crm: CRM) -> None:
    s = spring(crm)
    r = crm.campaign_results(s.n, at=T0 + 3 * H)
    assert r.at == T0 + 3 * H
    assert figures(r) == {
        "recipients": {"newsletter": 6, "telemarketing": 2}, "audience": 7, "sent": 5,
        "delivered": 3, "opened": 2, "opens": 2, "clicked": 1, "clicks": 1, "hard_bounced": 1,
        "soft_bounced": 1, "unsubscribed": 0, "complained": 0, "called": 0, "calls": {}, "responses": 1,
        "linked_opportunities": 0,
    }
    assert (r.first_touch.opportunities, r.last_touch.opportunities, r.opportunities) == (0, 0, [])
    before_sending = crm.campaign_results(s.n, at=T0 - H)
    assert (before_sending.sent, before_sending.delivered, before_sending.cost.amount) == (0, 0, Decimal(0))
    assert before_sending.recipients == {"newsletter": 6, "telemarketing": 2}
    # A's deal was open at T0 + 5 days, won at T0 + 10 days
    open_then = crm.campaign_results(s.n, at=T0 + 5 * DAY)
    assert {o.opportunity_id: o.status.value for o in open_then.opportunities} == {
        s.oa: "open", s.ob: "open", s.of: "won"}
    assert open_then.first_touch.won_value == {"USD": Decimal("300.00")}
    with pytest.raises(CampaignNotFound):
        crm.campaign_results(s.n, at=T0 - 3 * DAY)


def test_results_as_known_at_a_moment_leave_out_what_was_recorded_later(crm: CRM) -> None:
    s = spring(crm)
    known = datetime.now(UTC)
    time.sleep(0.01)
    report(crm, "complaint", s.n, s.parties["A"], T0 + 8 * H)  # back-dated
    n = crm._load_of(Campaign, s.n, None, CampaignNotFound)
    n.record_cost(amount=Money.of("200", "EUR"), actor="u", effective_at=T0 + 20 * DAY)
    crm._save(n)
    now = crm.campaign_results(s.n)
    assert (now.complained, now.cost.amount, now.first_touch.roi) == (2, Decimal(400), Decimal("1.5"))
    then = crm.campaign_results(s.n, at=T0 + 30 * DAY, known_at=known)
    assert (then.complained, then.cost.amount, then.first_touch.roi) == (1, Decimal(200), Decimal(4))
    assert then.known_at == known
    assert crm.campaign_results(s.n, known_at=known) == then.model_copy(update={"at": known})
    effective = crm.campaign_results(s.n, at=T0 + 30 * DAY)
    assert (effective.complained, effective.cost.amount) == (2, Decimal("400.00"))


def test_results_over_a_period_are_per_campaign_launched_in_it_and_summed(crm: CRM) -> None:
    s = spring(crm)
    period = crm.campaign_results_over(T0 - 130 * DAY, T0)
    assert [c.campaign_id for c in period.campaigns] == [s.m, s.n]  # in launch order
    assert period.campaigns[1] == crm.campaign_results(s.n)
    t = period.totals
    # Winter: A and B sent, each opened once (an open proves the delivery)
    assert (t.campaigns, t.recipients, t.audience, t.sent, t.delivered, t.opened, t.opens) == (
        2, {"newsletter": 8, "telemarketing": 2}, 9, 7, 5, 4, 4)
    assert (t.open_rate, t.cost) == (Decimal("0.8000"), {"EUR": Decimal("200.00")})
    assert (t.first_touch.opportunities, t.last_touch.opportunities) == (3, 3)  # each credited once a model
    assert t.first_touch.roi == {"EUR": Decimal("4.0000")}
    only_spring = crm.campaign_results_over(T0 - 2 * DAY, T0)
    assert [c.campaign_id for c in only_spring.campaigns] == [s.n]
    empty = crm.campaign_results_over(T0, T0 + DAY)
    assert (empty.campaigns, empty.totals.sent, empty.totals.open_rate, empty.totals.first_touch.roi) == (
        [], 0, None, {})
    as_of = crm.campaign_results_over(T0 - 130 * DAY, T0, at=T0 + 3 * H)
    assert as_of.campaigns[1] == crm.campaign_results(s.n, at=T0 + 3 * H)


def test_an_opportunity_on_the_survivor_of_a_merged_recipient_is_credited(crm: CRM) -> None:
    s = spring(crm)
    survivor = crm.register_party(kind="person", name="A2", stage="prospect", actor="u",
                                  effective_at=T0 - 200 * DAY)
    crm.merge(survivor, s.parties["B"], actor="u", reason="same person")
    deal = crm.open_opportunity(survivor, title="After the merge", value="50", currency="EUR",
                                expected_close=date(2026, 6, 30), owner="ann", actor="u",
                                effective_at=T0 + 4 * DAY)
    r = crm.campaign_results(s.n)
    assert {o.opportunity_id for o in r.opportunities if o.last_touch} >= {deal, s.ob}
    then = crm.campaign_results(s.n, at=datetime.now(UTC))
    assert then.opportunities == r.opportunities


def test_opportunities_carry_the_campaign_they_were_opened_from(crm: CRM) -> None:
    s = spring(crm)
    assert crm.get_opportunity(s.of).campaign_id == s.n
    assert crm.get_opportunity(s.oa).campaign_id is None
    summaries = {o.id: o for o in crm.opportunities()}
    assert (summaries[s.of].campaign_id, summaries[s.of].opened_at) == (s.n, T0 + 3 * DAY)
    rows = {r["id"]: r for r in crm.view_rows("pipeline")}
    assert (rows[str(s.of)]["campaign_id"], rows[str(s.oa)]["campaign_id"]) == (str(s.n), None)


def test_an_opportunity_from_an_unknown_campaign_is_refused_and_nothing_is_stored(crm: CRM) -> None:
    party = crm.register_party(kind="person", name="Ada", stage="prospect", actor="u")
    before = crm.position
    for bad, error in ((uuid4(), CampaignNotFound), (party, CampaignNotFound), ("not an id", InvalidInput)):
        with pytest.raises(error):
            crm.open_opportunity(party, title="Deal", value="10", currency="EUR", expected_close="2026-12-31",
                                 owner="ann", actor="u", campaign_id=bad)
    assert crm.position == before


def test_bad_questions_about_results_are_refused(crm: CRM) -> None:
    s = spring(crm)
    naive = datetime(2026, 1, 1)
    for call in (
        lambda: crm.campaign_results("nope"),
        lambda: crm.campaign_results(s.n, attribution_window_days=0),
        lambda: crm.campaign_results(s.n, attribution_window_days=True),
        lambda: crm.campaign_results(s.n, attribution_window_days="90"),  # type: ignore[arg-type]
        lambda: crm.campaign_results(s.n, at=naive),
        lambda: crm.campaign_results(s.n, at=T0, known_at=naive),
        lambda: crm.campaign_results_over(T0, T0),
        lambda: crm.campaign_results_over(naive, T0),
    ):
        with pytest.raises(InvalidInput):
            call()
    with pytest.raises(CampaignNotFound):
        crm.campaign_results(uuid4())
    with pytest.raises(CampaignNotFound):
        crm.campaign_results(s.parties["A"])


def test_the_campaigns_view_counts_audience_exclusions_sends_and_cost_without_the_lists(crm: CRM) -> None:
    s = spring(crm)
    rows = {r["campaign_id"]: r for r in crm.view_rows("campaigns")}
    row = rows[str(s.n)]
    assert {k: row[k] for k in ("name", "status", "channels", "budget", "cost", "recipients", "exclusions",
                                "sent", "waves", "skipped", "launched_at")} == {
        "name": "Spring", "status": "running", "channels": ["newsletter", "telemarketing"],
        "budget": {"amount": "1000.00", "currency": "EUR"}, "cost": "200.00",
        "recipients": {"newsletter": 6, "telemarketing": 2},
        "exclusions": {"telemarketing": {"no_address": 1}}, "sent": 5, "waves": 1,
        "skipped": {"suppressed": 1}, "launched_at": (T0 - DAY).isoformat(),
    }
    assert str(s.parties["A"]) not in str(row)  # no recipient list in the row


def test_a_recipient_row_keeps_first_and_last_times_counts_links_and_calls(crm: CRM) -> None:
    s = spring(crm)
    a = s.parties["A"]
    (row,) = crm.view_rows("campaign_recipients", campaign_id=str(s.n), party_id=str(a))
    t = lambda d: (T0 + d).isoformat()  # noqa: E731
    assert row == {
        "campaign_id": str(s.n), "party_id": str(a),
        "delivered": [t(H), t(H), 1], "opened": [t(2 * H), t(3 * H), 2], "clicked": [t(4 * H), t(5 * H), 2],
        "called": [t(DAY), t(2 * DAY), 2], "links": [L1, L2],
        "call_outcomes": {"interested": 1, "no_answer": 1},
        "operator_calls": {"ann": {"no_answer": 1}, "bob": {"interested": 1}},
        "last_call": [t(2 * DAY), row["last_call"][1], "interested", "bob", None],
        "touch_call_first": t(2 * DAY),
    }
    engagement = {r["party_id"]: r for r in crm.view_rows("party_engagement")}[str(a)]
    assert {k: engagement.get(k) for k in ("first_delivery", "last_delivery", "deliveries", "opens", "clicks",
                                           "last_open", "last_click", "calls", "touches")} == {
        "first_delivery": (T0 - 110 * DAY).isoformat(), "last_delivery": t(5 * H), "deliveries": 1,
        "opens": 3, "clicks": 2,
        "last_open": t(3 * H), "last_click": t(5 * H), "calls": 2,
        "touches": {str(s.m): (T0 - 110 * DAY).isoformat(), str(s.n): t(2 * H)},
    }


def test_the_views_rebuilt_from_zero_equal_those_kept_up_to_date(crm: CRM) -> None:
    spring(crm)
    for name in ("campaign_recipients", "party_engagement", "campaigns"):
        kept = crm.view_rows(name)
        assert crm.rebuild_view(name) > 0
        assert crm.view_rows(name) == kept, name


def test_the_views_caught_up_from_parsed_reports_equal_the_folds_of_decoded_ones(crm: CRM) -> None:
    s = spring(crm)
    crm.merge(s.parties["G"], s.parties["C"], actor="u", reason="same person")
    for name in ("campaign_recipients", "party_engagement"):
        view = crm._runner.view(name)
        assert isinstance(view, RecordView)
        assert view.skimmed_topics
        folded = fold_records(view, [r for page in crm._runner.reader.pages(view.topics()) for r in page])
        assert len(folded) > 2
        key = (lambda r: f"{r['campaign_id']}:{r['party_id']}") if name == "campaign_recipients" else (
            lambda r: r["party_id"])
        assert {key(r): r for r in crm.view_rows(name)} == folded, name
        crm.rebuild_view(name)
        assert {key(r): r for r in crm.view_rows(name)} == folded, name
