"""The campaign views as pure folds over records, with no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from crmcore import Money
from crmcore.aggregates.party import Party
from crmcore.projections.base import combine_parts, fold_records
from crmcore.projections.campaigns import (
    CampaignRecipientsView,
    CampaignsView,
    PartyEngagementView,
    engagement_by_survivor,
    recipient_key,
)
from crmcore.projections.records import StoredRecord, record_of
from crmcore.testing.campaigns import engagement_report, running_campaign

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
C, P = uuid4(), uuid4()


def records(*reports: tuple[str, datetime, dict[str, Any]], campaign: UUID = C, party: UUID = P,
            ) -> list[StoredRecord]:
    events = [e for kind, at, fields in reports
              for e in engagement_report(kind, campaign_id=campaign, party_id=party, at=at,
                                         **fields).collect_events()]
    return [record_of(e, n) for n, e in enumerate(events, 1)]


def test_a_recipient_row_holds_only_the_kinds_reported() -> None:
    rows = fold_records(CampaignRecipientsView(), records(("delivered", T0, {}), ("opened", T0 + H, {})))
    assert rows == {recipient_key(str(C), str(P)): {
        "campaign_id": str(C), "party_id": str(P),
        "delivered": [T0.isoformat(), T0.isoformat(), 1],
        "opened": [(T0 + H).isoformat(), (T0 + H).isoformat(), 1],
    }}


def test_times_in_other_offsets_are_kept_as_utc_text() -> None:
    rome = (T0 + H).astimezone(ZoneInfo("Europe/Rome"))
    rows = fold_records(CampaignRecipientsView(), records(("opened", rome, {}), ("opened", T0, {})))
    (row,) = rows.values()
    assert row["opened"] == [T0.isoformat(), (T0 + H).isoformat(), 2]


def test_an_unsubscribe_by_phone_is_kept_apart_from_the_newsletter_one() -> None:
    view = CampaignRecipientsView()
    (row,) = fold_records(view, records(("unsubscribed", T0, {"channel": "telemarketing"}))).values()
    assert "unsubscribed" not in row
    assert row["unsubscribed_by_phone"] == [T0.isoformat(), T0.isoformat(), 1]
    (engagement,) = fold_records(PartyEngagementView(), records(
        ("unsubscribed", T0, {"channel": "telemarketing"}))).values()
    assert "first_delivery" not in engagement  # a telephone unsubscribe proves no delivery


def test_links_are_a_sorted_set_and_a_click_without_a_link_adds_none() -> None:
    (row,) = fold_records(CampaignRecipientsView(), records(
        ("clicked", T0, {"link": "b"}), ("clicked", T0, {"link": "a"}), ("clicked", T0, {"link": "b"}),
        ("clicked", T0, {}))).values()
    assert (row["links"], row["clicked"][2]) == (["a", "b"], 4)


def test_calls_count_per_outcome_and_operator_and_keep_the_latest_and_the_first_touching() -> None:
    (row,) = fold_records(CampaignRecipientsView(), records(
        ("called", T0 + 2 * H, {"operator": "bob", "outcome": "call_back", "call_back_on": "2026-01-09"}),
        ("called", T0, {"operator": "ann", "outcome": "no_answer"}),
        ("called", T0 + 3 * H, {"operator": "ann", "outcome": "interested"}),
    )).values()
    assert row["call_outcomes"] == {"call_back": 1, "interested": 1, "no_answer": 1}
    assert row["operator_calls"] == {"ann": {"interested": 1, "no_answer": 1}, "bob": {"call_back": 1}}
    assert row["last_call"][2:] == ["interested", "ann", None]  # no call-back date
    assert row["touch_call_first"] == (T0 + 2 * H).isoformat()  # no answer does not touch


def test_party_engagement_separates_delivery_evidence_from_delivery_reports() -> None:
    (row,) = fold_records(PartyEngagementView(), records(
        ("clicked", T0 + 3 * H, {"link": "x"}), ("delivered", T0 + H, {}), ("soft_bounce", T0, {}),
        ("opened", T0 + 2 * H, {}), ("called", T0 + 4 * H, {"outcome": "reached"}))).values()
    assert row == {
        "party_id": str(P), "first_delivery": (T0 + H).isoformat(), "last_delivery": (T0 + 3 * H).isoformat(),
        "deliveries": 1, "opens": 1, "last_open": (T0 + 2 * H).isoformat(), "clicks": 1,
        "last_click": (T0 + 3 * H).isoformat(), "bounces": 1, "last_bounce": T0.isoformat(), "calls": 1,
        "last_call": (T0 + 4 * H).isoformat(), "touches": {str(C): (T0 + 2 * H).isoformat()},
    }


def merge_records(loser: UUID, survivor: UUID, *, unmerge: bool = False) -> list[StoredRecord]:
    merged = Party.MergedInto(originator_id=loser, originator_version=2, timestamp=T0, actor="u",
                              effective_at=T0, survivor_id=survivor, reason="same")
    result = [record_of(merged, 100)]
    if unmerge:
        restored = Party.Unmerged(originator_id=loser, originator_version=3, timestamp=T0, actor="u",
                                  effective_at=T0, other_id=survivor, restored={"merged_into": None},
                                  reason="not the same")
        result.append(record_of(restored, 101))
    return result


def test_a_merge_and_an_unmerge_are_followed_whatever_the_order() -> None:
    view = PartyEngagementView()
    survivor = uuid4()
    facts = records(("opened", T0, {}))
    merged = fold_records(view, [*facts, *merge_records(P, survivor)])
    assert merged[str(P)]["merged_into"] == str(survivor)
    back = merge_records(P, survivor, unmerge=True)
    assert fold_records(view, [back[1], *facts, back[0]]) == fold_records(view, [*facts, *back])
    assert "merged_into" not in fold_records(view, [*back, *facts])[str(P)]


def test_the_engagement_of_merged_parties_is_combined_into_their_survivor() -> None:
    view = PartyEngagementView()
    survivor, middle = uuid4(), uuid4()
    rows = fold_records(view, [
        *records(("delivered", T0, {}), party=P), *records(("opened", T0 + H, {}), party=middle),
        *records(("clicked", T0 + 2 * H, {}), party=survivor),
        *merge_records(P, middle), *merge_records(middle, survivor),
    ])
    combined = engagement_by_survivor(rows.values(), view)
    assert set(combined) == {str(survivor)}
    row = combined[str(survivor)]
    assert (row["party_id"], row["first_delivery"], row["last_open"], row["last_click"]) == (
        str(survivor), T0.isoformat(), (T0 + H).isoformat(), (T0 + 2 * H).isoformat())
    assert "merged_into" not in row
    assert engagement_by_survivor(rows.values(), view, {str(survivor)}) == combined
    assert engagement_by_survivor(rows.values(), view, {str(P)}) == {}  # merged away: not standing


def test_rows_folded_apart_combine_into_the_row_folded_together() -> None:
    facts = records(("delivered", T0, {}), ("opened", T0 + H, {}), ("clicked", T0 + 2 * H, {"link": "a"}),
                    ("called", T0, {"operator": "ann", "outcome": "reached"}),
                    ("called", T0 + H, {"operator": "bob", "outcome": "interested"}),
                    ("clicked", T0 + 3 * H, {"link": "b"}), ("hard_bounce", T0, {}))
    for view in (CampaignRecipientsView(), PartyEngagementView()):
        whole = fold_records(view, facts)
        for cut in range(len(facts) + 1):
            parts = [fold_records(view, facts[:cut]), fold_records(view, facts[cut:])]
            assert combine_parts(view, parts) == whole, (view.name, cut)


def test_the_campaigns_row_counts_without_listing_recipients() -> None:
    parties = [uuid4() for _ in range(3)]
    campaign = running_campaign(newsletter=parties, telemarketing=parties[:1], at=T0, sent=parties[:2],
                                cost=Money.of("150", "EUR"), name="Spring")
    campaign.record_cost(amount=Money.of("50", "EUR"), actor="u", effective_at=T0 + H)
    campaign.complete(actor="u", effective_at=T0 + 2 * H)
    rows = fold_records(CampaignsView(), [record_of(e) for e in campaign.collect_events()])
    row = rows[str(campaign.id)]
    assert {k: row[k] for k in ("name", "status", "cost", "recipients", "sent", "waves", "completed_at")} == {
        "name": "Spring", "status": "completed", "cost": "200.00",
        "recipients": {"newsletter": 3, "telemarketing": 1}, "sent": 2, "waves": 1,
        "completed_at": (T0 + 2 * H).isoformat(),
    }
    assert all(str(p) not in str(row) for p in parties)
