"""The audit export of a party (design 07 § 3) on every store: every event of the party, of the parties
merged into it, of their opportunities and tasks, the engagement reports about them and the decisions about
their addresses — once each, in order, with actor, both times and log position — and nothing of anyone
else."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from crmcore import CRM, PartyNotFound
from crmcore.testing.campaigns import engagement_report, running_campaign

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


def test_the_export_holds_the_whole_history_of_a_party_and_of_what_was_merged_into_it(crm: CRM) -> None:
    ann = crm.register_party(kind="person", name="Ann Rossi", stage="lead", actor="import",
                             emails=["ann@example.com"], effective_at=NOW - 50 * DAY)
    twin = crm.register_party(kind="person", name="Anna Rossi", stage="lead", actor="fair",
                              emails=["anna@example.com"], effective_at=NOW - 40 * DAY)
    other = crm.register_party(kind="person", name="Bob", stage="prospect", actor="import",
                               emails=["bob@example.com"], effective_at=NOW - 50 * DAY)
    crm.subscribe_to(twin, channel="newsletter", source="form", lawful_basis="consent", actor="web",
                     effective_at=NOW - 39 * DAY)
    campaign = running_campaign(newsletter=[twin, other], at=NOW - 30 * DAY)
    crm._save(campaign)
    crm._save(engagement_report("opened", campaign_id=campaign.id, party_id=twin, at=NOW - 29 * DAY))
    crm._save(engagement_report("opened", campaign_id=campaign.id, party_id=other, at=NOW - 29 * DAY))
    crm.record_delivery(twin, address="anna@example.com", outcome="hard_bounce", actor="mailer",
                        effective_at=NOW - 28 * DAY)
    crm.qualify(ann, actor="sales:giulia", effective_at=NOW - 20 * DAY)
    deal = crm.open_opportunity(ann, title="Deal", value="1000", currency="EUR", expected_close="2030-01-31",
                                owner="giulia", actor="sales:giulia", effective_at=NOW - 19 * DAY)
    task = crm.plan_task(kind="call", subject="Call Ann", assignees=["giulia"], actor="sales:giulia",
                         party_id=ann, deadline="2030-01-31", effective_at=NOW - 18 * DAY)
    crm.open_opportunity(other, title="Other deal", value="5", currency="EUR", expected_close="2030-01-31",
                         owner="giulia", actor="sales:giulia", effective_at=NOW - 19 * DAY)
    crm.merge(ann, twin, actor="sales:head", reason="same person", effective_at=NOW - 10 * DAY)

    position = crm.position
    records = crm.audit_export(ann)
    assert crm.position == position  # an export records nothing
    kinds = {(r.aggregate, r.aggregate_id) for r in records}
    assert ("opportunity", deal) in kinds
    assert ("task", task) in kinds
    assert {r.party_id for r in records} == {ann, twin}
    assert any(r.aggregate == "engagement" and r.party_id == twin for r in records)
    assert any(r.aggregate == "address" for r in records)  # the bounce decision about anna@example.com
    events = [(r.aggregate_id, r.version) for r in records]
    assert len(events) == len(set(events))  # once each
    expected = {(e.party_id, e.version) for e in crm.timeline(ann, include_merged=True)}
    assert {(r.aggregate_id, r.version) for r in records if r.aggregate == "party"} == expected
    assert all(r.position is not None and 0 < r.position <= position for r in records)
    assert [(r.effective_at, r.recorded_at, r.position) for r in records] == sorted(
        (r.effective_at, r.recorded_at, r.position) for r in records)
    qualified = next(r for r in records if r.event == "Party.Qualified")
    assert (qualified.actor, qualified.changes["stage"].after) == ("sales:giulia", "prospect")
    everything = json.dumps([r.model_dump(mode="json") for r in records])
    assert str(other) not in everything  # nothing of anyone else
    assert "Other deal" not in everything

    out = io.StringIO()
    assert crm.write_audit_export(ann, out) == len(records)
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["position"] for line in lines] == [r.position for r in records]


def test_an_unknown_party_is_refused(crm: CRM) -> None:
    with pytest.raises(PartyNotFound):
        crm.audit_export(uuid4())
