"""Custom fields and profile traits on every store: the catalog, party values, scans and dry runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest

from crmcore import (
    CRM,
    FieldAlreadyDefined,
    FieldDefinition,
    FieldNotDefined,
    FieldRuleViolation,
    FieldScanFinding,
    InvalidInput,
)
from crmcore.aggregates import Party
from crmcore.aggregates.catalog import CATALOG_ID

LEGAL_FORMS = ["S.p.A.", "S.r.l.", "S.n.c."]


def define_legal_form(crm: CRM, **extra: Any) -> FieldDefinition:
    synonyms = {"SPA": "S.p.A.", "società per azioni": "S.p.A."}
    return crm.define_field(name="legal_form", kind="choice", choices=LEGAL_FORMS, synonyms=synonyms,
                            actor="admin", **extra)


def organization(crm: CRM, name: str = "Acme", **extra: Any) -> UUID:
    return crm.register_party(kind="organization", name=name, actor="sales", **extra)


# ---------------------------------------------------------------------- the catalog


def test_a_defined_field_is_in_the_catalog_at_a_new_version(crm: CRM) -> None:
    assert crm.field_catalog().version == 0
    definition = define_legal_form(crm)
    catalog = crm.field_catalog()
    assert catalog["legal_form"] == definition
    assert catalog.version == 2  # the catalog's start, then the definition


def test_the_catalog_at_an_old_version_gives_the_rules_in_force_then(crm: CRM) -> None:
    define_legal_form(crm)
    before = crm.field_catalog().version
    crm.change_field_rules("legal_form", required=True, actor="admin")
    assert crm.field_catalog()["legal_form"].required
    assert crm.field_catalog(before)["legal_form"].required is False
    assert len(crm.field_catalog(0)) == 0


def test_reading_a_catalog_version_that_does_not_exist_is_refused(crm: CRM) -> None:
    define_legal_form(crm)
    with pytest.raises(InvalidInput, match="no version 9"):
        crm.field_catalog(9)


def test_defining_a_field_twice_is_refused_and_stores_nothing(crm: CRM) -> None:
    define_legal_form(crm)
    position = crm.position
    with pytest.raises(FieldAlreadyDefined):
        crm.define_field(name="legal_form", kind="text", actor="admin")
    assert crm.position == position


def test_an_invalid_definition_is_refused_as_invalid_input_and_stores_nothing(crm: CRM) -> None:
    with pytest.raises(InvalidInput, match="pattern"):
        crm.define_field(name="code", kind="number", pattern="[0-9]+", actor="admin")
    assert crm.position == 0


def test_changing_a_fields_kind_is_refused_and_stores_nothing(crm: CRM) -> None:
    define_legal_form(crm)
    position = crm.position
    with pytest.raises(InvalidInput, match="kind of a field never changes"):
        crm.change_field_rules("legal_form", kind="multi_choice", actor="admin")
    assert crm.position == position


def test_renaming_a_field_is_refused(crm: CRM) -> None:
    define_legal_form(crm)
    with pytest.raises(InvalidInput, match="never renamed"):
        crm.change_field_rules("legal_form", name="form", actor="admin")


def test_retiring_an_unknown_field_is_refused_and_stores_nothing(crm: CRM) -> None:
    with pytest.raises(FieldNotDefined):
        crm.retire_field("nickname", reason="typo", actor="admin")
    assert crm.position == 0


# ---------------------------------------------------------------------- values on parties


def test_values_are_normalised_through_synonyms_and_abbreviations(crm: CRM) -> None:
    define_legal_form(crm)
    party = organization(crm)
    for given in ("SPA", "spa", "S.p.A", "società per azioni"):
        crm.set_fields(party, values={"legal_form": None}, actor="u")
        view = crm.set_fields(party, values={"legal_form": given}, actor="u")
        assert view.custom_fields == {"legal_form": "S.p.A."}
    assert crm.get_party(party).custom_fields == {"legal_form": "S.p.A."}


def test_a_refused_value_suggests_the_closest_allowed_one_and_stores_nothing(crm: CRM) -> None:
    define_legal_form(crm)
    party = organization(crm)
    with pytest.raises(FieldRuleViolation) as refused:
        crm.set_fields(party, values={"legal_form": "Srll"}, actor="u")
    assert refused.value.suggestion == "S.r.l."
    assert "did you mean 'S.r.l.'" in str(refused.value)
    assert crm.get_party(party).version == 1


def test_setting_an_undefined_field_is_refused_and_stores_nothing(crm: CRM) -> None:
    party = organization(crm)
    with pytest.raises(InvalidInput, match="not a defined field"):
        crm.set_fields(party, values={"shoe_size": "42"}, actor="u")
    assert crm.get_party(party).version == 1


def test_setting_the_values_already_stored_records_nothing(crm: CRM) -> None:
    define_legal_form(crm)
    party = organization(crm)
    crm.set_fields(party, values={"legal_form": "SPA"}, actor="u")
    assert crm.set_fields(party, values={"legal_form": "spa"}, actor="u").version == 2


def test_a_none_value_clears_a_field(crm: CRM) -> None:
    define_legal_form(crm)
    party = organization(crm)
    crm.set_fields(party, values={"legal_form": "SPA"}, actor="u")
    view = crm.set_fields(party, values={"legal_form": None}, actor="u")
    assert (view.custom_fields, view.custom_field_versions) == ({}, {})
    assert view.version == 3


def test_the_timeline_shows_the_fields_updated_with_the_catalog_version(crm: CRM) -> None:
    define_legal_form(crm)
    party = organization(crm)
    crm.set_fields(party, values={"legal_form": "spa"}, actor="clerk")
    entry = crm.timeline(party)[-1]
    assert (entry.event, entry.actor) == ("FieldsUpdated", "clerk")
    assert entry.data == {"changes": {"legal_form": "S.p.A."}, "catalog_version": 2}
    assert entry.changes["custom_fields"].after == {"legal_form": "S.p.A."}


def test_registration_records_custom_fields_as_a_second_event_in_the_same_save(crm: CRM) -> None:
    define_legal_form(crm)
    position = crm.position
    party = organization(crm, fields={"legal_form": "spa"})
    assert [e.event for e in crm.timeline(party)] == ["Registered", "FieldsUpdated"]
    assert crm.get_party(party).custom_fields == {"legal_form": "S.p.A."}
    assert [c.position for c in crm.changes(after=position)] == [position + 1, position + 2]


def test_a_registration_missing_a_required_field_is_refused_and_stores_nothing(crm: CRM) -> None:
    define_legal_form(crm, required=True)
    position = crm.position
    with pytest.raises(FieldRuleViolation, match="required"):
        organization(crm)
    with pytest.raises(FieldRuleViolation, match="did you mean"):
        organization(crm, fields={"legal_form": "Srll"})
    assert crm.position == position


def test_a_required_field_cannot_be_cleared(crm: CRM) -> None:
    define_legal_form(crm, required=True)
    party = organization(crm, fields={"legal_form": "SPA"})
    with pytest.raises(FieldRuleViolation, match="required"):
        crm.set_fields(party, values={"legal_form": None}, actor="u")
    assert crm.get_party(party).version == 2


def test_values_are_read_against_the_rules_in_force_when_they_were_written(crm: CRM) -> None:
    define_legal_form(crm)
    party = organization(crm, fields={"legal_form": "S.n.c."})
    written_under = crm.field_catalog().version
    crm.change_field_rules("legal_form", choices=["S.p.A.", "S.r.l."], synonyms={}, actor="admin")
    value = crm.field_values(party)["legal_form"]
    assert (value.value, value.catalog_version) == ("S.n.c.", written_under)
    assert value.definition is not None
    assert "S.n.c." in value.definition.values
    assert "S.n.c." not in crm.field_catalog()["legal_form"].values
    with pytest.raises(FieldRuleViolation):
        crm.set_fields(party, values={"legal_form": "S.n.c."}, actor="u")


def test_a_retired_fields_values_stay_readable_but_take_no_new_values(crm: CRM) -> None:
    define_legal_form(crm)
    party = organization(crm, fields={"legal_form": "SPA"})
    crm.retire_field("legal_form", reason="moved to identity", actor="admin")
    assert crm.field_values(party)["legal_form"].retired
    assert crm.get_party(party).custom_fields == {"legal_form": "S.p.A."}
    with pytest.raises(InvalidInput, match="not a defined field"):
        crm.set_fields(party, values={"legal_form": "S.r.l."}, actor="u")


def test_values_of_every_kind_are_stored_in_canonical_form(crm: CRM) -> None:
    crm.define_field(name="employees", kind="number", minimum=1, actor="admin")
    crm.define_field(name="founded", kind="date", actor="admin")
    crm.define_field(name="vip", kind="boolean", actor="admin")
    crm.define_field(name="markets", kind="multi_choice", choices=["Italy", "France"], actor="admin")
    crm.define_field(name="attention", kind="label", choices=[{"value": "Hot", "colour": "red"}],
                     actor="admin")
    crm.define_field(name="linkedin", kind="web_link", actor="admin")
    crm.define_field(name="note", kind="text", max_length=20, actor="admin")
    party = organization(crm)
    crm.set_fields(party, values={
        "employees": "1.50e2", "founded": "1999-02-03", "vip": "sì", "markets": ["france", "ITALY", "France"],
        "attention": "hot", "linkedin": "https://linkedin.com/company/acme", "note": "  big   fish ",
    }, actor="u")
    assert crm.get_party(party).custom_fields == {
        "employees": "150", "founded": "1999-02-03", "vip": True, "markets": ["France", "Italy"],
        "attention": "Hot", "linkedin": "https://linkedin.com/company/acme", "note": "big fish",
    }


def test_several_broken_values_are_refused_together_and_store_nothing(crm: CRM) -> None:
    crm.define_field(name="employees", kind="number", minimum=1, actor="admin")
    define_legal_form(crm)
    party = organization(crm)
    with pytest.raises(InvalidInput, match="2 custom field problems") as refused:
        crm.set_fields(party, values={"employees": "0", "legal_form": "Srll"}, actor="u")
    assert {e["loc"] for e in refused.value.errors} == {("employees",), ("legal_form",)}
    assert crm.get_party(party).version == 1


def test_a_stale_expected_version_refuses_setting_fields(crm: CRM) -> None:
    define_legal_form(crm)
    party = organization(crm)
    crm.assign(party, owner="rep", actor="u")
    with pytest.raises(Exception, match="expected version 1"):
        crm.set_fields(party, values={"legal_form": "SPA"}, actor="u", expected_version=1)


# ---------------------------------------------------------------------- scans and dry runs


def test_a_dry_run_tightening_shows_who_breaks_it_and_stores_nothing(crm: CRM) -> None:
    define_legal_form(crm)
    snc = organization(crm, "Snc", fields={"legal_form": "S.n.c."})
    organization(crm, "Spa", fields={"legal_form": "SPA"})
    position, version = crm.position, crm.field_catalog().version
    findings = crm.change_field_rules("legal_form", choices=["S.p.A.", "S.r.l."], synonyms={},
                                      actor="admin", dry_run=True)
    assert [(f.party_id, f.field, f.value) for f in findings] == [(snc, "legal_form", "S.n.c.")]
    assert isinstance(findings[0], FieldScanFinding)
    assert "not an allowed value" in findings[0].message
    assert (crm.position, crm.field_catalog().version) == (position, version)


def test_a_dry_run_is_refused_like_the_change_itself_and_stores_nothing(crm: CRM) -> None:
    define_legal_form(crm)
    position = crm.position
    with pytest.raises(InvalidInput, match="kind of a field never changes"):
        crm.change_field_rules("legal_form", kind="text", actor="admin", dry_run=True)
    with pytest.raises(FieldAlreadyDefined):
        crm.define_field(name="legal_form", kind="text", actor="admin", dry_run=True)
    with pytest.raises(FieldNotDefined):
        crm.change_field_rules("nickname", required=True, actor="admin", dry_run=True)
    assert crm.position == position


def test_a_scan_after_tightening_reports_the_parties_that_now_break_the_rule(crm: CRM) -> None:
    crm.define_field(name="employees", kind="number", actor="admin")
    small = organization(crm, "Small", fields={"employees": 3})
    organization(crm, "Big", fields={"employees": 300})
    assert crm.scan_fields() == []
    crm.change_field_rules("employees", minimum=10, actor="admin")
    findings = crm.scan_fields()
    assert [(f.party_id, f.value) for f in findings] == [(small, "3")]
    assert "below the minimum 10" in findings[0].message


def test_a_scan_suggests_the_closest_allowed_value(crm: CRM) -> None:
    crm.define_field(name="tier", kind="choice", choices=["Gold", "Silver", "Goldish"], actor="admin")
    party = organization(crm, fields={"tier": "Goldish"})
    proposed = crm.field_catalog()["tier"].model_copy(update={"choices": ("Gold", "Silver")})
    [finding] = crm.scan_fields([proposed])
    assert (finding.party_id, finding.suggestion) == (party, "Gold")


def test_a_dry_run_of_a_new_required_field_lists_every_party_without_a_value(crm: CRM) -> None:
    first, second = organization(crm, "A"), organization(crm, "B")
    findings = crm.define_field(name="sector", kind="text", required=True, actor="admin", dry_run=True)
    assert sorted(f.party_id for f in findings) == sorted([first, second])
    assert all(f.value is None for f in findings)
    assert crm.position == 2


def test_a_scan_can_be_limited_to_named_fields(crm: CRM) -> None:
    define_legal_form(crm)
    crm.define_field(name="employees", kind="number", actor="admin")
    organization(crm, fields={"legal_form": "SPA", "employees": "5"})
    crm.change_field_rules("employees", maximum=1, actor="admin")
    crm.change_field_rules("legal_form", choices=["S.r.l."], synonyms={}, actor="admin")
    assert {f.field for f in crm.scan_fields()} == {"employees", "legal_form"}
    assert {f.field for f in crm.scan_fields(names=["employees"])} == {"employees"}
    with pytest.raises(FieldNotDefined):
        crm.scan_fields(names=["nickname"])


# ---------------------------------------------------------------------- the segmentation profile


def test_profile_traits_stay_free_form_while_the_catalog_defines_none(crm: CRM) -> None:
    define_legal_form(crm)
    party = organization(crm, profile={"anything": "goes", "visits": 3})
    assert crm.update_profile(party, changes={"more": ["a"]}, actor="u").profile == {
        "anything": "goes", "visits": 3, "more": ["a"],
    }


def test_adopting_the_standard_profile_checks_and_normalises_traits(crm: CRM) -> None:
    catalog = crm.adopt_standard_profile(actor="admin")
    assert [n for n, d in catalog.items() if d.section == "profile"] == [
        "interests", "behaviours", "preferred_channels", "opinions",
    ]
    party = organization(crm, profile={"preferred_channels": ["E-mail", "telephone"]})
    assert crm.get_party(party).profile == {"preferred_channels": ["email", "phone"]}
    view = crm.update_profile(party, changes={"interests": "  cloud   backup "}, actor="u")
    assert view.profile["interests"] == "cloud backup"


def test_a_trait_the_catalog_does_not_define_is_refused_once_traits_are_defined(crm: CRM) -> None:
    crm.adopt_standard_profile(actor="admin")
    party = organization(crm)
    position = crm.position
    with pytest.raises(InvalidInput, match="not a defined field"):
        crm.update_profile(party, changes={"shoe_size": 42}, actor="u")
    with pytest.raises(FieldRuleViolation, match="did you mean 'phone'"):
        crm.update_profile(party, changes={"preferred_channels": ["phon"]}, actor="u")
    with pytest.raises(InvalidInput, match="not a defined field"):
        organization(crm, profile={"shoe_size": 42})
    assert crm.position == position


def test_bulk_updates_and_registrations_check_profile_traits(crm: CRM) -> None:
    crm.adopt_standard_profile(actor="admin")
    [party] = crm.bulk_register([{"kind": "person", "name": "Ada", "actor": "import",
                                  "profile": {"preferred_channels": ["mail"]}}])
    assert crm.get_party(party).profile == {"preferred_channels": ["email"]}
    crm.bulk_update([{"party_id": party, "actor": "import", "profile": {"opinions": " likes  us "}}])
    assert crm.get_party(party).profile["opinions"] == "likes us"
    position = crm.position
    with pytest.raises(InvalidInput, match="row 1"):
        crm.bulk_update([{"party_id": party, "actor": "import", "profile": {"opinions": "fine"}},
                         {"party_id": party, "actor": "import", "profile": {"shoe_size": 42}}])
    with pytest.raises(InvalidInput, match="row 0"):
        crm.bulk_register([{"kind": "person", "name": "Bob", "actor": "import",
                            "profile": {"preferred_channels": ["pigeon"]}}])
    assert crm.position == position


def test_bulk_registration_is_refused_while_a_custom_field_is_required(crm: CRM) -> None:
    define_legal_form(crm, required=True)
    position = crm.position
    with pytest.raises(InvalidInput, match="required"):
        crm.bulk_register([{"kind": "organization", "name": "Acme", "actor": "import"}])
    assert crm.position == position


def test_a_scan_checks_stored_profile_traits_against_proposed_ones(crm: CRM) -> None:
    party = organization(crm, profile={"preferred_channels": ["email", "fax"]})
    organization(crm, "Other", profile={"preferred_channels": ["email"]})
    channels = FieldDefinition(name="preferred_channels", kind="multi_choice", choices=["email", "phone"],
                               section="profile")
    [finding] = crm.scan_fields([channels])
    assert (finding.party_id, finding.value) == (party, ["email", "fax"])


# ---------------------------------------------------------------------- history and stored shapes


def test_a_party_snapshot_stored_before_custom_fields_existed_still_loads(crm: CRM) -> None:
    define_legal_form(crm)
    party_id = organization(crm)
    party = crm._app.repository.get(party_id)
    taken = Party.Snapshot.take(party)
    old_state = {k: v for k, v in taken.state.items() if k not in ("custom_fields", "custom_field_versions")}
    old = Party.Snapshot(originator_id=taken.originator_id, originator_version=taken.originator_version,
                         timestamp=taken.timestamp, topic=taken.topic, state=old_state)
    crm._app.snapshots.put([old])  # type: ignore[union-attr]
    assert crm.get_party(party_id).custom_fields == {}
    assert crm.set_fields(party_id, values={"legal_form": "spa"}, actor="u").custom_fields == {
        "legal_form": "S.p.A.",
    }


def test_a_catalog_past_its_snapshot_interval_reads_every_version_right(crm: CRM) -> None:
    crm.define_field(name="score", kind="number", actor="admin")
    for maximum in range(1, 60):
        crm.change_field_rules("score", maximum=maximum, actor="admin")
    assert crm.field_catalog()["score"].maximum == 59
    assert crm.field_catalog(10)["score"].maximum == 8
    assert crm._app.snapshots is not None
    assert list(crm._app.snapshots.get(CATALOG_ID))


def test_the_parties_view_keeps_custom_fields_and_profile_and_rebuilds_them(crm: CRM) -> None:
    define_legal_form(crm)
    party = organization(crm, fields={"legal_form": "spa"}, profile={"visits": 1})
    crm.update_profile(party, changes={"visits": 2}, actor="u")
    [row] = crm.view_rows("parties")
    assert (row["custom_fields"], row["profile"]) == ({"legal_form": "S.p.A."}, {"visits": 2})
    crm.rebuild_view("parties")
    assert crm.view_rows("parties") == [row]


def test_fields_defined_at_once_by_several_writers_all_land(crm: CRM) -> None:
    names = [f"field_{i}" for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda n: crm.define_field(name=n, kind="text", actor="admin"), names))
    catalog = crm.field_catalog()
    assert sorted(catalog) == names
    assert catalog.version == 1 + len(names)
