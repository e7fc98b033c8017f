"""Which parties are inactive, through the CRM on every store: now, at past moments, as known then, under
another policy, with merges."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from crmcore import CRM, EngagementPolicy, InvalidInput
from crmcore.testing.campaigns import engagement_report, running_campaign

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=500)  # now is about 16 months after T0
DAY, YEAR = timedelta(days=1), timedelta(days=365)


def report(crm: CRM, kind: str, campaign: UUID, party: UUID, at: datetime, **fields: str) -> None:
    crm._save(engagement_report(kind, campaign_id=campaign, party_id=party, at=at, **fields))


def audience(crm: CRM) -> tuple[UUID, dict[str, UUID]]:
    """Parties mailed by one campaign at T0: ``silent`` (delivered, never opened), ``reader`` (opened 10
    days later), ``clicker`` (only a click reported), ``bounced`` (soft bounce only), ``caller`` (only a call
    and a telephone unsubscribe), ``fresh`` (first delivered a month later), and ``never`` (no report)."""
    names = ("silent", "reader", "clicker", "bounced", "caller", "fresh", "never")
    p = {n: crm.register_party(kind="person", name=n, actor="u", effective_at=T0 - DAY) for n in names}
    campaign = running_campaign(newsletter=list(p.values()), telemarketing=[p["caller"]], at=T0)
    crm._save(campaign)
    report(crm, "delivered", campaign.id, p["silent"], T0)
    report(crm, "delivered", campaign.id, p["reader"], T0)
    report(crm, "opened", campaign.id, p["reader"], T0 + 10 * DAY)
    report(crm, "clicked", campaign.id, p["clicker"], T0)
    report(crm, "soft_bounce", campaign.id, p["bounced"], T0)
    report(crm, "called", campaign.id, p["caller"], T0, outcome="reached")
    report(crm, "unsubscribed", campaign.id, p["caller"], T0, channel="telemarketing")
    report(crm, "delivered", campaign.id, p["fresh"], T0 + 30 * DAY)
    return campaign.id, p


def test_parties_mailed_a_year_ago_without_opening_since_are_inactive(crm: CRM) -> None:
    _, p = audience(crm)
    assert crm.inactive_parties(at=T0 + YEAR) == {p["silent"], p["clicker"]}  # a click proves a delivery
    assert crm.inactive_parties(at=T0 + YEAR - timedelta(seconds=1)) == set()
    assert crm.inactive_parties(at=T0 + 10 * DAY + YEAR) == {p["silent"], p["clicker"], p["reader"]}
    everyone_mailed = {p["silent"], p["clicker"], p["reader"], p["fresh"]}
    assert crm.inactive_parties(at=T0 + 30 * DAY + YEAR) == everyone_mailed
    assert crm.inactive_parties() == everyone_mailed  # now


def test_a_past_moment_reads_only_the_reports_effective_by_then(crm: CRM) -> None:
    campaign, p = audience(crm)
    report(crm, "opened", campaign, p["silent"], T0 + YEAR + 5 * DAY)
    assert p["silent"] not in crm.inactive_parties()  # it opened since
    assert p["silent"] in crm.inactive_parties(at=T0 + YEAR + DAY)  # not yet then
    assert crm._inactive([str(p["silent"]), str(p["reader"])], T0 + YEAR + DAY) == {str(p["silent"])}
    assert crm._inactive([str(p["silent"]), str(p["never"])]) == set()


def test_as_known_at_a_moment_a_late_report_is_left_out(crm: CRM) -> None:
    campaign, p = audience(crm)
    known = datetime.now(UTC)
    time.sleep(0.01)
    report(crm, "opened", campaign, p["silent"], T0 + 200 * DAY)  # back-dated
    assert p["silent"] not in crm.inactive_parties(at=T0 + YEAR + DAY)
    assert p["silent"] in crm.inactive_parties(at=T0 + YEAR + DAY, known_at=known)


def test_another_policy_says_who_would_be_inactive_under_it(crm: CRM) -> None:
    _, p = audience(crm)
    month = EngagementPolicy(inactive_after_days=30, version=2)
    assert crm.inactive_parties(at=T0 + 45 * DAY, policy=month) == {p["silent"], p["clicker"], p["reader"]}

    with CRM("memory:", engagement_policy=month) as strict:
        _, q = audience(strict)
        assert strict.inactive_parties(at=T0 + 45 * DAY) == {q["silent"], q["clicker"], q["reader"]}


def test_a_survivor_takes_over_the_engagement_of_the_parties_merged_into_it(crm: CRM) -> None:
    _, p = audience(crm)
    survivor = crm.register_party(kind="person", name="Survivor", actor="u", effective_at=T0 - DAY)
    crm.merge(survivor, p["silent"], actor="u", reason="same person", effective_at=T0 + 2 * DAY)
    inactive = crm.inactive_parties(at=T0 + YEAR + DAY)
    assert survivor in inactive
    assert p["silent"] not in inactive
    assert crm.inactive_parties(at=T0 + DAY) == set()
    crm.merge(survivor, p["reader"], actor="u", reason="same person too", effective_at=T0 + 3 * DAY)
    # the reader's open 10 days after T0 now counts for the survivor: the survivor's last open
    assert survivor not in crm.inactive_parties(at=T0 + YEAR + DAY)
    assert survivor in crm.inactive_parties(at=T0 + YEAR + 11 * DAY)
    assert crm._inactive([str(survivor), str(p["silent"])]) == {str(survivor)}  # now


def test_a_bad_policy_is_refused(crm: CRM) -> None:
    with pytest.raises(InvalidInput):
        crm.inactive_parties(policy="strict")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        crm.inactive_parties(at=datetime(2025, 1, 1))
    with pytest.raises(InvalidInput):
        CRM("memory:", engagement_policy={"inactive_after_days": 30})  # type: ignore[arg-type]
