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
