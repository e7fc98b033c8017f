"""Campaign results hold whatever the reports and their order: unique counts nest (opened <= delivered <=
sent), any permutation folds to the same rows and results, rows folded apart combine into the rows folded
together, and the views rebuilt from zero equal those kept up to date on every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM
from crmcore.aggregates.campaign import Campaign
from crmcore.models import CampaignResults
from crmcore.projections.base import combine_parts, fold_records
from crmcore.projections.campaign_results import campaign_results_of
from crmcore.projections.campaigns import CampaignRecipientsView, PartyEngagementView, engagement_by_survivor
from crmcore.projections.records import StoredRecord, record_of
from crmcore.testing.campaigns import engagement_report, running_campaign

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
WINDOW = timedelta(days=90)
PARTIES = [UUID(int=n + 1) for n in range(6)]
SENT = PARTIES[:4]  # the last two are in the audience, never sent
CAMPAIGN = running_campaign(newsletter=PARTIES, telemarketing=PARTIES[3:], at=T0 - timedelta(days=1),
                            sent=SENT)
CAMPAIGN.collect_events()
OUTCOMES = ["reached", "no_answer", "wrong_number", "call_back", "interested", "not_interested"]

#: One report: (kind, which party, hours after T0, link or outcome choice). Few parties and hours, so
#: ties and repeated kinds are common.
reports = st.lists(
    st.tuples(
        st.sampled_from(["delivered", "opened", "clicked", "soft_bounce", "hard_bounce", "unsubscribed",
                         "complaint", "called"]),
        st.integers(min_value=0, max_value=len(PARTIES) - 1),
        st.integers(min_value=0, max_value=48),
        st.integers(min_value=0, max_value=5),
    ),
    max_size=40,
)


def records_of(facts: list[tuple[str, int, int, int]], *, only_sent: bool = False) -> list[StoredRecord]:
    result = []
    for number, (kind, who, hours, choice) in enumerate(facts):
        party = (SENT if only_sent and kind != "called" else PARTIES)[who % (4 if only_sent else 6)]
        extra: dict[str, Any] = {}
        if kind == "clicked":
            extra["link"] = [None, "a", "b"][choice % 3]
        elif kind == "called":
            extra.update(operator=["ann", "bob"][choice % 2], outcome=OUTCOMES[choice])
        report = engagement_report(kind, campaign_id=CAMPAIGN.id, party_id=party,
                                   at=T0 + timedelta(hours=hours), external_id=f"r{number}", **extra)
        result.extend(record_of(e, number + 1) for e in report.collect_events())
    return result


def results_of(records: list[StoredRecord], campaign: Campaign = CAMPAIGN) -> CampaignResults:
    view = CampaignRecipientsView()
    rows = {row["party_id"]: row for row in fold_records(view, records).values()}
    engagement = engagement_by_survivor(fold_records(PartyEngagementView(), records).values(),
                                        PartyEngagementView())
    touches = {p: r.get("touches", {}) for p, r in engagement.items()}
    opportunities = [{"id": f"00000000-0000-0000-0000-00000000010{n}", "party_id": str(p),
                      "campaign_id": None, "opened_at": (T0 + timedelta(hours=30)).isoformat(),
                      "status": "won", "amount": "100.00", "currency": "EUR"} for n, p in enumerate(PARTIES)]
    return campaign_results_of(campaign, rows, touches, opportunities, window=WINDOW)


@settings(max_examples=300, deadline=None)
@given(facts=reports, seed=st.randoms(use_true_random=False))
def test_unique_counts_nest_for_any_reports_in_any_order(facts: list[Any], seed: Any) -> None:
    for only_sent in (True, False):
        records = records_of(facts, only_sent=only_sent)
        seed.shuffle(records)
        r = results_of(records)
        assert 0 <= r.clicked <= r.opened <= r.delivered <= r.sent <= r.recipients["newsletter"]
        assert r.hard_bounced <= r.sent
        assert r.soft_bounced + r.delivered <= r.sent
        assert r.unsubscribed <= r.delivered
        assert r.complained <= r.delivered
        assert r.responses <= r.audience
        assert r.clicks >= r.clicked
        for rate in (r.open_rate, r.click_rate, r.click_to_open_rate, r.hard_bounce_rate, r.soft_bounce_rate,
                     r.unsubscribe_rate, r.complaint_rate, r.response_rate):
            assert rate is None or 0 <= rate <= 1
        assert r.first_touch.opportunities <= len(PARTIES)


@settings(max_examples=200, deadline=None)
@given(facts=reports, seed=st.randoms(use_true_random=False))
def test_any_permutation_of_the_reports_folds_to_the_same_rows_and_results(
    facts: list[Any], seed: Any,
) -> None:
    records = records_of(facts)
    shuffled = list(records)
    seed.shuffle(shuffled)
    for view in (CampaignRecipientsView(), PartyEngagementView()):
        assert fold_records(view, shuffled) == fold_records(view, records), view.name
    assert results_of(shuffled) == results_of(records)


@settings(max_examples=200, deadline=None)
@given(facts=reports, cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=3),
       seed=st.randoms(use_true_random=False))
def test_rows_folded_in_shares_combine_into_the_rows_folded_whole(
    facts: list[Any], cuts: list[int], seed: Any,
) -> None:
    records = records_of(facts)
    seed.shuffle(records)
    bounds = [0, *sorted(min(c, len(records)) for c in cuts), len(records)]
    for view in (CampaignRecipientsView(), PartyEngagementView()):
        shares = [fold_records(view, records[a:b]) for a, b in pairwise(bounds)]
        assert combine_parts(view, shares) == fold_records(view, records), view.name


CASES = st.lists(st.tuples(st.sampled_from(["delivered", "opened", "clicked", "hard_bounce", "called"]),
                           st.integers(min_value=0, max_value=5), st.integers(min_value=0, max_value=48),
                           st.integers(min_value=0, max_value=5)), min_size=1, max_size=12)


def test_the_views_rebuilt_from_zero_equal_those_kept_up_to_date_after_each_save(crm: CRM) -> None:
    campaign = running_campaign(newsletter=PARTIES, telemarketing=PARTIES[3:], at=T0 - timedelta(days=1),
                                sent=SENT)
    crm._save(campaign)
    names = ("campaign_recipients", "party_engagement", "campaigns")
    state = {"number": 0}

    @settings(max_examples=8, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(facts=CASES)
    def check(facts: list[Any]) -> None:
        for kind, who, hours, choice in facts:
            state["number"] += 1
            extra: dict[str, Any] = {"link": "a"} if kind == "clicked" else {}
            if kind == "called":
                extra.update(operator="ann", outcome=OUTCOMES[choice])
            crm._save(engagement_report(kind, campaign_id=campaign.id, party_id=PARTIES[who],
                                        at=T0 + timedelta(hours=hours), external_id=f"s{state['number']}",
                                        **extra))
            crm.update_views()  # incrementally, after each save
        kept = {name: crm.view_rows(name) for name in names}
        results = crm.campaign_results(campaign.id)
        for name in names:
            crm.rebuild_view(name)
            assert crm.view_rows(name) == kept[name], name
        assert crm.campaign_results(campaign.id) == results
        now = datetime.now(UTC)
        assert crm.campaign_results(campaign.id, at=now) == results.model_copy(update={"at": now})

    check()
