"""The FieldCatalog aggregate: definitions versioned by events, with no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crmcore import (
    STANDARD_PROFILE,
    Channel,
    FieldAlreadyDefined,
    FieldDefinition,
    FieldNotDefined,
    InvalidInput,
)
from crmcore.aggregates import FieldCatalog
from crmcore.aggregates.catalog import CATALOG_ID

LEGAL_FORM = FieldDefinition(
    name="legal_form", kind="choice", choices=("S.p.A.", "S.r.l."), synonyms={"SPA": "S.p.A."}
)


def started() -> FieldCatalog:
    catalog = FieldCatalog.start(actor="admin")
    catalog.define(LEGAL_FORM, actor="admin")
    return catalog


def test_every_catalog_has_the_same_deterministic_id() -> None:
    assert FieldCatalog.start(actor="a").id == FieldCatalog.start(actor="b").id == CATALOG_ID


def test_a_new_catalog_is_at_version_one_with_no_fields() -> None:
    catalog = FieldCatalog.start(actor="admin")
    assert catalog.version == 1
    assert len(catalog.fields()) == 0


def test_defining_a_field_stores_its_definition_as_json_native_data() -> None:
    catalog = started()
    event = catalog.collect_events()[-1]
    assert isinstance(event, FieldCatalog.FieldDefined)
    assert event.definition == LEGAL_FORM.model_dump(mode="json")
    assert event.actor == "admin"
    assert catalog.fields()["legal_form"] == LEGAL_FORM
    assert catalog.fields().version == catalog.version == 2


def test_defining_a_name_twice_is_refused_and_records_nothing() -> None:
    catalog = started()
    catalog.collect_events()
    with pytest.raises(FieldAlreadyDefined):
        catalog.define(FieldDefinition(name="legal_form", kind="text"), actor="admin")
    assert catalog.collect_events() == []


def test_a_retired_name_is_never_defined_again() -> None:
    catalog = started()
    catalog.retire("legal_form", reason="moved to identity", actor="admin")
    catalog.collect_events()
    with pytest.raises(FieldAlreadyDefined, match="retired"):
        catalog.define(LEGAL_FORM, actor="admin")
    assert catalog.collect_events() == []


def test_changing_rules_records_the_whole_new_definition() -> None:
    catalog = started()
    tighter = LEGAL_FORM.model_copy(update={"required": True})
    assert catalog.change_rules(tighter, actor="admin") is True
    event = catalog.collect_events()[-1]
    assert isinstance(event, FieldCatalog.FieldRulesChanged)
    assert (event.name, event.definition["required"]) == ("legal_form", True)
    assert catalog.definition("legal_form").required


def test_changing_rules_to_the_same_definition_records_nothing() -> None:
    catalog = started()
    catalog.collect_events()
    assert catalog.change_rules(LEGAL_FORM, actor="admin") is False
    assert catalog.collect_events() == []


@pytest.mark.parametrize("change", [{"kind": "multi_choice"}, {"section": "profile"}])
def test_changing_a_fields_kind_or_section_is_refused_and_records_nothing(change: dict[str, str]) -> None:
    catalog = started()
    catalog.collect_events()
    with pytest.raises(InvalidInput, match="never changes"):
        catalog.change_rules(LEGAL_FORM.model_copy(update=change), actor="admin")
    assert catalog.collect_events() == []


def test_changing_or_retiring_an_unknown_field_is_refused_and_records_nothing() -> None:
    catalog = started()
    catalog.collect_events()
    with pytest.raises(FieldNotDefined):
        catalog.retire("nickname", reason="typo", actor="admin")
    with pytest.raises(FieldNotDefined):
        catalog.change_rules(FieldDefinition(name="nickname", kind="text"), actor="admin")
    assert catalog.collect_events() == []


def test_retiring_a_field_removes_it_from_the_active_definitions() -> None:
    catalog = started()
    catalog.retire("legal_form", reason="unused", actor="admin")
    assert "legal_form" not in catalog.fields()
    assert catalog.retired == {"legal_form": "unused"}
    with pytest.raises(FieldNotDefined, match="retired"):
        catalog.definition("legal_form")


def test_replaying_the_events_gives_the_rules_in_force_at_each_version() -> None:
    catalog = started()
    catalog.change_rules(LEGAL_FORM.model_copy(update={"required": True}), actor="admin")
    events = catalog.collect_events()
    replayed = None
    for event in events[:2]:
        replayed = event.mutate(replayed)
    assert isinstance(replayed, FieldCatalog)
    assert replayed.definition("legal_form").required is False


def test_a_future_effective_time_is_refused() -> None:
    catalog = started()
    with pytest.raises(InvalidInput, match="future"):
        catalog.define(FieldDefinition(name="note", kind="text"), actor="admin",
                       effective_at=datetime.now(UTC) + timedelta(days=1))


def test_a_definition_stored_before_a_rule_existed_loads_with_the_rules_default() -> None:
    catalog = FieldCatalog.start(actor="admin")
    stored = LEGAL_FORM.model_dump(mode="json")
    del stored["section"]
    catalog._field_defined(definition=stored, actor="admin", effective_at=datetime.now(UTC))
    assert catalog.fields()["legal_form"] == LEGAL_FORM


def test_the_fields_of_one_section_are_read_apart() -> None:
    catalog = started()
    for definition in STANDARD_PROFILE:
        catalog.define(definition, actor="admin")
    fields = catalog.fields()
    assert list(fields.section("custom")) == ["legal_form"]
    assert list(fields.section("profile")) == ["interests", "behaviours", "preferred_channels", "opinions"]
    assert fields.section("profile").version == fields.version == catalog.version


def test_the_standard_preferred_channels_are_the_channel_values_with_common_synonyms() -> None:
    channels = {d.name: d for d in STANDARD_PROFILE}["preferred_channels"]
    assert channels.values == tuple(c.value for c in Channel)
    assert channels.normalise(["E-mail", "telephone", "Web form", "email"]) == ["email", "phone", "web_form"]
