"""Identity values on parties, on every store: stored normalised, refused when wrong, kept unique."""

from __future__ import annotations

from datetime import date

import pytest

from crmcore import CRM, DuplicateParty, InvalidInput, PartyNotFound

ACME_VAT = "IT00743110157"  # a partita IVA with a valid checksum


def person(crm: CRM, **fields: object) -> object:
    return crm.register_party(
        kind="person", actor="u", **{"given_name": "Mario", "family_name": "Rossi", **fields}
    )


def test_a_person_registered_with_identity_values_reads_them_back_normalised(crm: CRM) -> None:
    party_id = person(
        crm,
        emails=["Mario.Rossi@Example.COM", "m.rossi@acme.it"],
        phones=["06 1234 5678", "+44 20 7946 0958"],
        birth_date="1980-02-03",
        web_links=["https://www.linkedin.com/in/mario-rossi"],
        address={
            "country": "it",
            "street": "Via Roma",
            "street_number": "1",
            "postcode": "00184",
            "locality": "Roma",
            "province": "RM",
        },
    )
    party = crm.get_party(party_id)
    assert party.name == "Mario Rossi"
    assert (party.given_name, party.family_name) == ("Mario", "Rossi")
    assert party.emails == ["Mario.Rossi@example.com", "m.rossi@acme.it"]
    assert party.primary_email == "Mario.Rossi@example.com"
    assert party.phones == ["+390612345678", "+442079460958"]
    assert party.primary_phone == "+390612345678"
    assert party.birth_date == date(1980, 2, 3)
    assert party.address is not None
    assert party.address.country == "IT"
    assert party.address.postcode == "00184"
    assert party.web_links == ["https://www.linkedin.com/in/mario-rossi"]


def test_an_organization_keeps_its_vat_number_in_compact_prefixed_form(crm: CRM) -> None:
    org = crm.register_party(
        kind="organization", name="ACME S.p.A.", vat_number="IT 007 4311 0157", actor="u"
    )
    assert crm.get_party(org).vat_number == ACME_VAT


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"emails": ["not-an-email"]}, "emails"),
        ({"phones": ["12"]}, "phones"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
        (
            {"address": {"country": "IT", "street": "Via Roma", "postcode": "123", "locality": "Roma"}},
            "address",
        ),
        ({"web_links": ["ftp://example.com"]}, "web_links"),
        ({"phone_region": "Italy", "phones": ["06 1234 5678"]}, "phone_region"),
    ],
)
def test_a_bad_identity_value_is_refused_naming_its_field_and_nothing_is_stored(
    crm: CRM, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        person(crm, **fields)
    assert any(e["loc"][0] == field for e in refused.value.errors)
    assert crm.position == 0


def test_a_vat_number_with_a_wrong_checksum_is_refused_and_nothing_is_stored(crm: CRM) -> None:
    with pytest.raises(InvalidInput, match="vat_number"):
        crm.register_party(kind="organization", name="ACME", vat_number="IT00743110158", actor="u")
    assert crm.position == 0


def test_a_birth_date_for_an_organization_is_refused(crm: CRM) -> None:
    with pytest.raises(InvalidInput, match="birth_date"):
        crm.register_party(kind="organization", name="ACME", birth_date="2000-01-01", actor="u")
    assert crm.position == 0


def test_phone_numbers_without_country_code_are_read_in_the_configured_region(store_url: str) -> None:
    with CRM(store_url, default_region="GB") as crm:
        party_id = crm.register_party(kind="person", name="Ada", phones=["020 7946 0958"], actor="u")
        assert crm.get_party(party_id).phones == ["+442079460958"]


def test_registering_an_email_another_party_holds_is_refused_with_that_party(crm: CRM) -> None:
    first = person(crm, emails=["mario@example.com"])
    before = crm.position
    with pytest.raises(DuplicateParty) as refused:
        crm.register_party(kind="person", name="M. Rossi", emails=["MARIO@example.com"], actor="u")
    assert refused.value.existing_id == first
    assert refused.value.field == "email"
    assert crm.position == before


@pytest.mark.parametrize("field", ["phones", "vat_number"])
def test_a_phone_or_vat_number_another_party_holds_is_refused(crm: CRM, field: str) -> None:
    kind = "organization" if field == "vat_number" else "person"
    value: object = ACME_VAT if field == "vat_number" else ["+390612345678"]
    other: object = "IT 00743110157" if field == "vat_number" else ["06 1234 5678"]
    first = crm.register_party(kind=kind, name="First", actor="u", **{field: value})
    with pytest.raises(DuplicateParty) as refused:
        crm.register_party(kind=kind, name="Second", actor="u", **{field: other})
    assert refused.value.existing_id == first


def test_entering_a_duplicate_with_attach_adds_its_new_contact_points_to_the_existing_party(crm: CRM) -> None:
    first = person(crm, emails=["mario@example.com"])
    entered = crm.enter_party(
        kind="person",
        name="Mario R.",
        emails=["mario@example.com", "mr@acme.it"],
        phones=["06 1234 5678"],
        actor="u",
        attach=True,
    )
    assert entered.attached
    assert entered.party_id == first
    party = crm.get_party(first)
    assert party.emails == ["mario@example.com", "mr@acme.it"]
    assert party.phones == ["+390612345678"]
    assert crm.holder_of(email="MR@acme.it") == first


def test_entering_a_similar_person_at_the_same_company_warns_with_candidates_and_scores(crm: CRM) -> None:
    first = person(
        crm, emails=["mario.rossi@acme.it"], organization_name="ACME S.p.A.", birth_date="1980-01-02"
    )
    entered = crm.enter_party(
        kind="person",
        given_name="Mario",
        family_name="Rosi",
        emails=["mrossi@gmail.com"],
        organization_name="Acme SpA",
        birth_date="1980-01-02",
        actor="u",
    )
    assert not entered.attached
    assert entered.party_id != first
    (match,) = entered.near_matches
    assert match.party_id == entered.party_id
    assert match.other_id == first
    assert 0.5 < match.score <= 1.0
    levels = {r.field: r.level for r in match.reasons}
    assert levels["birth_date"] == "exact"
    assert levels["family_name"] == "close"


def test_an_unrelated_party_enters_with_no_near_matches(crm: CRM) -> None:
    person(crm, emails=["mario@example.com"])
    entered = crm.enter_party(kind="person", given_name="Giulia", family_name="Bianchi", actor="u")
    assert entered.near_matches == []


def test_changing_an_email_releases_the_old_one_for_another_party(crm: CRM) -> None:
    first = person(crm, emails=["old@example.com"])
    crm.update_identity(first, emails=["new@example.com"], actor="u")
    assert crm.holder_of(email="old@example.com") is None
    second = crm.register_party(kind="person", name="Other", emails=["old@example.com"], actor="u")
    assert crm.holder_of(email="old@example.com") == second
    with pytest.raises(DuplicateParty):
        crm.add_email(second, "new@example.com", actor="u")


def test_add_and_remove_contact_points_keep_one_primary_first(crm: CRM) -> None:
    party_id = person(crm, emails=["a@example.com"])
    crm.add_email(party_id, "b@example.com", actor="u")
    crm.add_email(party_id, "c@example.com", primary=True, actor="u")
    assert crm.get_party(party_id).emails == ["c@example.com", "a@example.com", "b@example.com"]
    crm.remove_email(party_id, "C@example.com", actor="u")
    assert crm.get_party(party_id).primary_email == "a@example.com"
    crm.add_phone(party_id, "06 1234 5678", actor="u")
    crm.remove_phone(party_id, "+390612345678", actor="u")
    assert crm.get_party(party_id).phones == []
    with pytest.raises(InvalidInput):
        crm.remove_email(party_id, "zzz@example.com", actor="u")


def test_renaming_a_person_by_family_name_renames_it_in_the_parties_view(crm: CRM) -> None:
    party_id = person(crm)
    crm.update_identity(party_id, family_name="Bianchi", actor="u")
    assert crm.get_party(party_id).name == "Mario Bianchi"
    assert [p.name for p in crm.parties()] == ["Mario Bianchi"]


def test_an_identity_update_that_changes_nothing_records_nothing(crm: CRM) -> None:
    party_id = person(crm, emails=["a@example.com"])
    version = crm.get_party(party_id).version
    crm.update_identity(party_id, emails=["a@example.com"], actor="u")
    assert crm.get_party(party_id).version == version


def test_bulk_registration_claims_identifiers_and_refuses_duplicates_before_storing(crm: CRM) -> None:
    ids = crm.bulk_register(
        [
            {"kind": "person", "name": "A", "emails": ["a@example.com"], "actor": "u"},
            {
                "kind": "person",
                "given_name": "B",
                "family_name": "Bee",
                "phones": ["06 1234 5678"],
                "actor": "u",
            },
            {"kind": "person", "name": "C", "actor": "u"},
        ]
    )
    assert crm.get_party(ids[1]).name == "B Bee"
    assert (crm.get_party(ids[1]).given_name, crm.get_party(ids[1]).phones) == ("B", ["+390612345678"])
    assert crm.get_party(ids[0]).emails == ["a@example.com"]
    assert crm.holder_of(phone="+390612345678") == ids[1]
    before = crm.position
    with pytest.raises(InvalidInput, match="row 1"):
        crm.bulk_register(
            [
                {"kind": "person", "name": "D", "emails": ["d@example.com"], "actor": "u"},
                {"kind": "person", "name": "E", "emails": ["D@example.com"], "actor": "u"},
            ]
        )
    with pytest.raises(DuplicateParty, match="row 0") as refused:
        crm.bulk_register([{"kind": "person", "name": "F", "emails": ["a@example.com"], "actor": "u"}])
    assert refused.value.existing_id == ids[0]
    assert crm.position == before


def test_holder_of_an_unknown_party_lookup_needs_exactly_one_identifier(crm: CRM) -> None:
    with pytest.raises(InvalidInput):
        crm.holder_of()
    assert crm.holder_of(vat_number=ACME_VAT) is None
    with pytest.raises(PartyNotFound):
        crm.resolve("01a20887-527a-7000-b3b2-9f6aff9012e9")


def test_near_matches_see_parties_registered_through_another_crm_since_the_last_check(store_url: str) -> None:
    if store_url == "memory:":
        pytest.skip("a memory store lives in one object")
    with CRM(store_url) as first, CRM(store_url) as second:
        assert (
            second.enter_party(kind="person", given_name="Anna", family_name="Neri", actor="u").near_matches
            == []
        )
        mario = first.register_party(
            kind="person", given_name="Mario", family_name="Rossi", birth_date="1980-01-02", actor="u"
        )
        first.update_identity(mario, emails=["mario@example.com"], actor="u")
        entered = second.enter_party(
            kind="person", given_name="Mario", family_name="Rossi", birth_date="1980-01-02", actor="u"
        )
        assert [m.other_id for m in entered.near_matches] == [mario]
        first.merge(entered.party_id, mario, actor="u", reason="dup")
        third = second.enter_party(
            kind="person", given_name="Mario", family_name="Rossi", birth_date="1980-01-02", actor="u"
        )
        assert [m.other_id for m in third.near_matches] == [entered.party_id]


def test_a_party_registered_in_bulk_reads_exactly_as_one_registered_alone(crm: CRM) -> None:
    fields = {
        "kind": "person",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "emails": ["Ada@Example.com"],
        "phones": ["+44 20 7946 0958"],
        "birth_date": "1915-12-10",
        "address": {
            "country": "GB",
            "street": "St James's Square",
            "postcode": "SW1Y 4JU",
            "locality": "London",
        },
        "web_links": ["https://example.com/ada"],
        "actor": "u",
    }
    alone = crm.get_party(crm.register_party(**fields)).model_dump(
        exclude={"id", "registered_at", "last_effective_at"}
    )
    crm.update_identity(crm.holder_of(email="ada@example.com"), emails=[], phones=[], actor="u")
    (bulk_id,) = crm.bulk_register([fields])
    in_bulk = crm.get_party(bulk_id).model_dump(exclude={"id", "registered_at", "last_effective_at"})
    assert in_bulk == alone
