"""Events stored by earlier versions of crmcore still read back (class versions and upcasting)."""

from __future__ import annotations

import json

from eventsourcing.persistence import StoredEvent

from crmcore import CRM
from crmcore.aggregates.party import Party


def _stored_as_version_1(stored: StoredEvent, *dropped: str) -> StoredEvent:
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2
    for field in dropped:
        state.pop(field)
    return StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                       json.dumps(state).encode())


def test_a_registration_and_a_conversion_stored_before_version_2_read_with_empty_new_fields() -> None:
    with CRM("memory:") as crm:
        party = crm.register_party(kind="person", name="Ada", stage="prospect", emails=["a@x.it"], actor="u")
        crm.convert(party, reference="SO-1", actor="u")
        registered, converted = crm._app.recorder.select_events(party)
        mapper = crm._app.mapper
        old_registered = mapper.to_domain_event(_stored_as_version_1(registered, "identity"))
        old_converted = mapper.to_domain_event(_stored_as_version_1(converted, "caused_by"))
    assert isinstance(old_registered, Party.Registered)
    assert old_registered.identity == {}
    assert isinstance(old_converted, Party.Converted)
    assert (old_converted.reference, old_converted.caused_by) == ("SO-1", None)
    rebuilt = old_converted.mutate(old_registered.mutate(None))
    assert rebuilt is not None
    assert rebuilt.stage.value == "customer"
    assert rebuilt.conversion_causes == []


def test_an_opportunity_opened_before_campaigns_existed_reads_as_opened_from_none() -> None:
    from datetime import date

    from crmcore.aggregates.opportunity import Opportunity
    from crmcore.projections.pipeline import PipelineView
    from crmcore.projections.records import RecordReader

    with CRM("memory:") as crm:
        party = crm.register_party(kind="person", name="Ada", stage="prospect", actor="u")
        deal = crm.open_opportunity(party, title="Deal", value="10", currency="EUR",
                                    expected_close=date(2026, 12, 31), owner="ann", actor="u")
        (opened,) = crm._app.recorder.select_events(deal)
        old = crm._app.mapper.to_domain_event(_stored_as_version_1(opened, "campaign_id"))
        assert isinstance(old, Opportunity.Opened)
        assert old.campaign_id is None
        assert old.mutate(None).state()["campaign_id"] is None
        # the fast reader hands the old form to the mapper, which upcasts it
        reader = RecordReader(crm._app.recorder, crm._app.mapper)
        stored = _stored_as_version_1(opened, "campaign_id")
        (record,) = reader._decode([(1, str(deal), 1, stored.topic, stored.state)])
        assert record.data["campaign_id"] is None
        assert record.topic in PipelineView.topics()


def test_an_opportunity_snapshot_taken_before_campaigns_existed_reads_as_opened_from_none() -> None:
    from datetime import date

    from crmcore.aggregates.opportunity import Opportunity

    with CRM("memory:") as crm:
        party = crm.register_party(kind="person", name="Ada", stage="prospect", actor="u")
        deal = crm.open_opportunity(party, title="Deal", value="10", currency="EUR",
                                    expected_close=date(2026, 12, 31), owner="ann", actor="u")
        opportunity = crm._load_opportunity(deal)
        snapshot = Opportunity.Snapshot.take(opportunity)
        del snapshot.state["campaign_id"]
        restored = snapshot.mutate(None)
        assert restored.campaign_id is None
        assert restored.state()["campaign_id"] is None
