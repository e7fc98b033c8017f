"""The hygiene report, its quarterly trend and the hygiene flags of segments, through the CRM on every store:
now, as of a past moment, as known then, grouped by owner and by segment, and bad input refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from crmcore import CRM, EngagementPolicy, HygienePolicy, InvalidInput
from crmcore.hygiene import quarter_ends
from crmcore.projections.hygiene import VIEWS
from crmcore.testing.campaigns import engagement_report, running_campaign
from crmcore.values import utc_now

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
T0 = NOW - 800 * DAY
#: Two completed stays are enough to measure a stage in these small worlds.
POLICY = HygienePolicy(min_samples=2)


def person(crm: CRM, name: str, stage: str, at: datetime, **fields: Any) -> UUID:
    fields.setdefault("emails", [f"{name.lower()}@example.com"])
    return crm.register_party(kind="person", name=name, stage=stage, actor="u", effective_at=at, **fields)


def report(crm: CRM, kind: str, campaign: UUID, party: UUID, at: datetime) -> None:
    crm._save(engagement_report(kind, campaign_id=campaign, party_id=party, at=at))


def world(crm: CRM) -> dict[str, UUID]:
    """Leads ``w1`` and ``w2`` were worked in 10 and 30 days (the lead average: 20 days, threshold 50);
    ``stale`` has been a lead for 60 days, ``fresh`` for 40, ``aside`` for 100 but is set aside; ``w1``
    (a prospect for two years: the 90-day fallback) negotiates an open deal; ``w2`` became a customer.
    ``silent`` was mailed 400 days ago and never opened, ``reader`` opened 30 days ago; ``bouncer``'s
    address hard-bounced (a recorded decision), ``ledger``'s only in its own ledger; ``quitter``
    unsubscribed from the newsletter; ``nobody`` has no e-mail address nor phone; ``acme`` is a target
    with no VAT number and no owner, negotiating; ``twin`` was merged into ``fresh``."""
    p = {
        "w1": person(crm, "W1", "lead", T0, owner="ann"), "w2": person(crm, "W2", "lead", T0, owner="ann"),
        "stale": person(crm, "Stale", "lead", NOW - 60 * DAY),
        "fresh": person(crm, "Fresh", "lead", NOW - 40 * DAY),
        "aside": person(crm, "Aside", "lead", NOW - 100 * DAY),
        "silent": person(crm, "Silent", "customer", T0),
        "reader": person(crm, "Reader", "customer", T0),
        "bouncer": person(crm, "Bouncer", "customer", T0),
        "ledger": person(crm, "Ledger", "customer", T0),
        "quitter": person(crm, "Quitter", "customer", T0),
        "nobody": person(crm, "Nobody", "customer", T0, emails=[], owner="bob"),
        "twin": person(crm, "Twin", "lead", NOW - 500 * DAY, emails=["twin@example.com"]),
    }
    for name in ("silent", "reader", "bouncer", "ledger", "quitter"):
        crm.assign(p[name], owner="bob", actor="u", effective_at=T0)
    p["acme"] = crm.register_party(kind="organization", name="Acme", stage="target", actor="u",
                                   effective_at=T0)
    crm.qualify(p["w1"], actor="u", effective_at=T0 + 10 * DAY)
    crm.qualify(p["w2"], actor="u", effective_at=T0 + 30 * DAY)
    crm.convert(p["w2"], actor="u", effective_at=T0 + 40 * DAY)
    for negotiating in ("w1", "acme"):
        crm.open_opportunity(p[negotiating], title="Deal", value="1000", currency="EUR",
                             expected_close="2030-01-31", owner="ann", actor="ann",
                             effective_at=T0 + 11 * DAY)
    crm.set_aside(p["aside"], reason="parked", actor="u", effective_at=NOW - 2 * DAY)
    campaign = running_campaign(newsletter=[p["silent"], p["reader"]], at=NOW - 400 * DAY)
    crm._save(campaign)
    report(crm, "delivered", campaign.id, p["silent"], NOW - 400 * DAY)
    report(crm, "delivered", campaign.id, p["reader"], NOW - 400 * DAY)
    report(crm, "opened", campaign.id, p["reader"], NOW - 30 * DAY)
    crm.record_delivery(p["bouncer"], address="bouncer@example.com", outcome="hard_bounce", actor="mailer",
                        effective_at=NOW - 20 * DAY)
    party = crm._load(p["ledger"])
    party.record_delivery(address="ledger@example.com", outcome="hard_bounce", actor="mailer",
                          effective_at=NOW - 10 * DAY)
    crm._save(party)  # straight into the ledger: no decision recorded
    crm.unsubscribe_from(p["quitter"], channels=["newsletter"], source="form", actor="u",
                         effective_at=NOW - 5 * DAY)
    crm.merge(p["fresh"], p["twin"], actor="u", reason="same person", effective_at=NOW - 3 * DAY)
    return p


def names(crm: CRM, ids: Any) -> set[str]:
    return {crm.get_party(i).name for i in ids}


def test_the_report_now_lists_each_section(crm: CRM) -> None:
    p = world(crm)
    report_now = crm.hygiene_report(policy=POLICY)
    averages = {a.stage.value: (a.days, a.samples, a.basis) for a in report_now.stage_averages}
    assert averages["lead"] == (20, 2, "measured")
    assert averages["prospect"][2] == "fallback"
    assert [(s.name, s.days_in_stage, s.threshold_days) for s in report_now.stale] == [("Stale", 60, 50)]
    assert names(crm, report_now.inactive) == {"Silent"}
    assert {(b.party_id, b.channel, b.rule, b.source) for b in report_now.bounced} == {
        (p["bouncer"], "email", "hard_bounce", "decision"), (p["ledger"], "email", "hard_bounce", "ledger")}
    assert report_now.unsubscribed["newsletter"] == [p["quitter"]]
    assert [(i.name, i.owner, i.missing) for i in report_now.incomplete] == [
        ("Acme", None, ["vat_number", "owner"]), ("Nobody", "bob", ["emails or phones"])]
    assert list(report_now.incomplete_by_owner()) == [None, "bob"]
    assert report_now.set_aside == [p["aside"]]
    assert report_now.rule_breaks == []
    assert report_now.duplicates is not None
    assert report_now.notes == []
    counts = report_now.counts
    assert (counts.parties, counts.stale, counts.inactive, counts.bounced, counts.unsubscribed,
            counts.incomplete, counts.set_aside) == (12, 1, 1, 2, 1, 2, 1)
    assert p["twin"] not in {i.party_id for i in report_now.incomplete}  # merged away: never reported


def test_the_report_as_of_a_past_moment_reads_what_was_effective_then(crm: CRM) -> None:
    p = world(crm)
    then = NOW - 15 * DAY
    past = crm.hygiene_report(at=then, policy=POLICY)
    assert past.at == then
    # Stale was 45 days in: under the 50-day threshold; Aside was not set aside yet, Twin not merged yet
    assert [s.name for s in past.stale] == sorted(["Aside", "Twin"], key=lambda n: str(p[n.lower()]))
    assert {b.party_id for b in past.bounced} == {p["bouncer"]}  # the ledger's bounce came 10 days ago
    assert past.unsubscribed["newsletter"] == []
    assert past.set_aside == []
    assert past.rule_breaks is None
    assert past.duplicates is None
    assert past.notes
    assert past.counts.rule_breaks is None
    earlier = crm.hygiene_report(at=NOW - 35 * DAY, policy=POLICY)
    assert names(crm, earlier.inactive) == {"Silent", "Reader"}  # the open came 30 days ago


def test_a_back_dated_change_alters_the_report_as_of_then_but_not_as_known_then(crm: CRM) -> None:
    p = world(crm)
    known = utc_now()
    crm.set_aside(p["stale"], reason="back-dated import", actor="import", effective_at=NOW - 20 * DAY)
    crm.restore(p["stale"], reason="worked again", actor="u")
    then = NOW - 10 * DAY
    assert crm.hygiene_report(at=then, policy=POLICY).set_aside == [p["stale"]]
    assert crm.hygiene_report(at=then, known_at=known, policy=POLICY).set_aside == []
    assert crm.hygiene_report(known_at=known, policy=POLICY).counts.set_aside == 1  # known_at alone: both
    assert p["stale"] not in crm.hygiene_report(policy=POLICY).set_aside  # restored since


def test_grouping_by_owner_judges_each_party_against_its_owners_average(crm: CRM) -> None:
    start = NOW - 300 * DAY
    for n, (owner, days) in enumerate([("ann", 10), ("ann", 10), ("bob", 100), ("bob", 100)]):
        party = person(crm, f"Worker{n}", "lead", start, owner=owner)
        crm.qualify(party, actor="u", effective_at=start + days * DAY)
        crm.convert(party, actor="u", effective_at=start + (days + 1) * DAY)
    slow = person(crm, "Slow", "lead", NOW - 60 * DAY, owner="ann")
    other = person(crm, "Other", "lead", NOW - 60 * DAY, owner="bob")
    alone = person(crm, "Alone", "lead", NOW - 60 * DAY)
    whole = crm.hygiene_report(policy=POLICY)
    assert [a.days for a in whole.stage_averages if a.stage == "lead"] == [55]  # threshold 137.5 days
    assert whole.stale == []
    grouped = crm.hygiene_report(policy=POLICY, group_by="owner")
    assert grouped.group_by == "owner"
    by_group = {(a.group, a.stage.value): (a.days, a.samples, a.basis) for a in grouped.group_averages}
    assert by_group[("ann", "lead")] == (10, 2, "measured")
    assert by_group[("bob", "lead")] == (100, 2, "measured")
    assert by_group[(None, "lead")] == (55, 4, "stage")  # nobody's leads: too few, the stage's average
    assert [(s.party_id, s.group, s.threshold_days) for s in grouped.stale] == [(slow, "ann", 25)]
    assert {other, alone}.isdisjoint(s.party_id for s in grouped.stale)


def test_grouping_by_segment_puts_each_party_in_the_first_segment_it_belongs_to(crm: CRM) -> None:
    start = NOW - 300 * DAY
    crm.define_field(name="sector", kind="choice", choices=["steel", "food"], section="profile",
                     actor="admin", effective_at=start - DAY)
    for n, (sector, days) in enumerate([("steel", 10), ("steel", 10), ("food", 100), ("food", 100)]):
        party = person(crm, f"Worker{n}", "lead", start, profile={"sector": sector})
        crm.qualify(party, actor="u", effective_at=start + days * DAY)
        crm.convert(party, actor="u", effective_at=start + (days + 1) * DAY)
    steel = crm.define_segment(name="Steel", criteria={"field": "sector", "eq": "steel"}, actor="u",
                               effective_at=start)
    food = crm.define_segment(name="Food", criteria={"field": "sector", "eq": "food"}, actor="u",
                              effective_at=start)
    crm.define_segment(name="Stale ones", criteria={"hygiene": "stale"}, actor="u", effective_at=start)
    slow = person(crm, "Slow", "lead", NOW - 60 * DAY, profile={"sector": "steel"})
    grouped = crm.hygiene_report(policy=POLICY, group_by="segment")
    by_group = {(a.group, a.stage.value): (a.days, a.basis) for a in grouped.group_averages}
    assert by_group[(str(steel), "lead")] == (10, "measured")
    assert by_group[(str(food), "lead")] == (100, "measured")
    assert {a.group for a in grouped.group_averages} == {str(steel), str(food)}  # not the hygiene one
    assert [(s.party_id, s.group) for s in grouped.stale] == [(slow, str(steel))]
    listed = crm.hygiene_report(policy=POLICY, group_by=[food])
    assert {a.group for a in listed.group_averages} == {str(food), None}
    # steel parties fall in no listed segment: the group None, measured from their stays
    assert [(s.party_id, s.group, s.threshold_days) for s in listed.stale] == [(slow, None, 25)]


@pytest.mark.parametrize("bad", [
    {"at": datetime(2025, 1, 1)}, {"known_at": datetime(2025, 1, 1)}, {"policy": EngagementPolicy()},
    {"policy": {"stale_factor": 2}}, {"group_by": "sector"}, {"group_by": ["not an id"]},
    {"group_by": 3},
    {"group_by": []}, {"group_by": ["01a20aa7-d430-7000-a42f-41cd216e6e6d"]},
])
def test_bad_input_to_the_report_is_refused(crm: CRM, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        crm.hygiene_report(**bad)


@pytest.mark.parametrize("bad", [
    {"quarters": 0}, {"quarters": 201}, {"quarters": True}, {"quarters": "8"},
    {"until": datetime(2025, 1, 1)}, {"policy": "hygiene"},
    {"quarters": 200, "until": datetime(30, 1, 1, tzinfo=UTC)},
])
def test_bad_input_to_the_trend_is_refused(crm: CRM, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        crm.hygiene_trend(**bad)


def test_the_trend_gives_the_reports_counts_at_each_quarter_end(
    crm: CRM, monkeypatch: pytest.MonkeyPatch,
) -> None:
    world(crm)
    folds: list[str] = []
    fold_at, fold_as_of = crm._runner.fold_at, crm._runner.fold_as_of

    def counting_fold_at(name: str, moments: Any, **kw: Any) -> Any:
        folds.append(name)
        return fold_at(name, moments, **kw)

    def no_fold_as_of(*args: Any, **kw: Any) -> Any:
        raise AssertionError("the trend folds each view once, at every quarter end")

    monkeypatch.setattr(crm._runner, "fold_at", counting_fold_at)
    monkeypatch.setattr(crm._runner, "fold_as_of", no_fold_as_of)
    trend = crm.hygiene_trend(quarters=9, policy=POLICY)
    monkeypatch.setattr(crm._runner, "fold_as_of", fold_as_of)
    assert sorted(folds) == sorted(VIEWS)  # each view the report reads, once
    assert {"party_facts", "pipeline", "party_engagement", "address_reports"} <= set(VIEWS)
    assert [c.quarter for c in trend] == [name for name, _ in quarter_ends(utc_now(), 9)]
    assert all(c.at.tzinfo is not None and (c.at.month, c.at.day, c.at.hour) in
               {(1, 1, 0), (4, 1, 0), (7, 1, 0), (10, 1, 0)} for c in trend)
    for counts in trend:
        then = crm.hygiene_report(at=counts.at - timedelta(microseconds=1), policy=POLICY).counts
        assert counts.model_dump(exclude={"at", "quarter"}) == then.model_dump(exclude={"at", "quarter"})
    assert trend[0].parties < trend[-1].parties


def test_the_trend_ends_with_the_last_quarter_ended_by_until() -> None:
    ends = quarter_ends(datetime(2025, 4, 1, tzinfo=UTC), 5)
    assert ends[-1] == ("2025-Q1", datetime(2025, 4, 1, tzinfo=UTC))
    assert ends[0] == ("2024-Q1", datetime(2024, 4, 1, tzinfo=UTC))
    just_before = quarter_ends(datetime(2025, 3, 31, 23, 59, tzinfo=UTC), 1)
    assert just_before == [("2024-Q4", datetime(2025, 1, 1, tzinfo=UTC))]


# ---------------------------------------------------------------------------------------------- segments


def test_inactive_customers_in_lombardy_make_a_segment(crm: CRM) -> None:
    start = NOW - 500 * DAY
    crm.define_field(name="region", kind="choice", choices=["Lombardy", "Veneto"],
                     synonyms={"lombardia": "Lombardy"}, section="profile", actor="admin", effective_at=start)
    region = {"ada": "Lombardy", "bea": "Lombardy", "cy": "Veneto", "dan": "Lombardy"}
    p = {n: person(crm, n.title(), "customer", start, profile={"region": r}) for n, r in region.items()}
    campaign = running_campaign(newsletter=list(p.values()), at=NOW - 400 * DAY)
    crm._save(campaign)
    for name in ("ada", "bea", "cy"):
        report(crm, "delivered", campaign.id, p[name], NOW - 400 * DAY)
    report(crm, "opened", campaign.id, p["bea"], NOW - 100 * DAY)
    segment = crm.define_segment(
        name="Inactive customers in Lombardy",
        criteria={"all": [{"hygiene": "inactive"}, {"stage": "customer"},
                          {"field": "region", "eq": "lombardia"}]},
        actor="u", effective_at=start)
    assert crm.get_segment(segment).criteria["all"][0] == {"hygiene": "inactive"}
    assert crm.segment_members(segment).ids == [p["ada"]]
    assert crm.segment_members(segment, at=NOW - 30 * DAY).ids == [p["ada"]]
    assert crm.segment_members(segment, at=NOW - 200 * DAY).ids == []  # mailed less than a year before
    assert crm.segment_members(segment, at=NOW - 20 * DAY, known_at=utc_now()).ids == [p["ada"]]
    assert [m.party_id for m in crm.evaluate({"hygiene": "inactive"})] == sorted([p["ada"], p["cy"]])


def test_every_flag_is_a_criterion(crm: CRM) -> None:
    p = world(crm)
    crm.hygiene_policy = POLICY
    found = {flag: names(crm, (m.party_id for m in crm.evaluate({"hygiene": flag})))
             for flag in ("stale", "inactive", "bounced", "incomplete", "set_aside")}
    assert found == {"stale": {"Stale"}, "inactive": {"Silent"}, "bounced": {"Bouncer", "Ledger"},
                     "incomplete": {"Nobody", "Acme"}, "set_aside": {"Aside"}}
    segment = crm.define_segment(name="Stale", criteria={"hygiene": "stale"}, actor="u",
                                 effective_at=NOW - 30 * DAY)
    assert crm.segment_members(segment).ids == [p["stale"]]
    referring = crm.define_segment(name="Stale leads", criteria={"all": [{"segment": str(segment)},
                                                                         {"stage": "lead"}]}, actor="u")
    assert crm.segment_members(referring).ids == [p["stale"]]  # evaluated afresh through the reference
    assert names(crm, crm.segment_members(segment, at=NOW - 15 * DAY).ids) == {"Aside", "Twin"}


def test_a_flag_is_refused_unless_it_is_known(crm: CRM) -> None:
    with pytest.raises(InvalidInput):
        crm.evaluate({"hygiene": "dusty"})


# ---------------------------------------------------------------------------------------------- stays


def test_a_merge_keeps_the_survivors_stays_and_an_unmerge_restores_them(crm: CRM) -> None:
    lead = person(crm, "Lead", "lead", T0)
    prospect = person(crm, "Prospect", "prospect", T0 + DAY)
    crm.merge(lead, prospect, actor="u", reason="same", effective_at=T0 + 10 * DAY)

    def stays(party: UUID) -> list[tuple[str, datetime]]:
        rows = {r["party_id"]: r for r in crm.view_rows("party_facts")}
        return [(s, datetime.fromisoformat(t)) for s, t in rows[str(party)]["stages"]]

    assert stays(lead) == [("lead", T0), ("prospect", T0 + 10 * DAY)]
    crm.unmerge(prospect, actor="u", reason="not the same", effective_at=T0 + 20 * DAY)
    assert stays(lead) == [("lead", T0)]
    assert stays(prospect) == [("prospect", T0 + DAY)]
    assert crm.party_facts()[str(lead)]["stage_since"].startswith(T0.date().isoformat())
