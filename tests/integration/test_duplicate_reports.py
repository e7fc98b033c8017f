"""Duplicate detection through the CRM, on every store: across the store, and before an import."""

from __future__ import annotations

from crmcore import CRM


def test_the_duplicates_report_pairs_parties_that_are_the_same_with_reasons(crm: CRM) -> None:
    a = crm.register_party(
        kind="person",
        given_name="Giuseppe",
        family_name="Verdi",
        birth_date="1970-10-10",
        emails=["gverdi@example.it"],
        actor="u",
    )
    b = crm.register_party(
        kind="person",
        given_name="Beppe",
        family_name="Verdi",
        birth_date="1970-10-10",
        emails=["beppe.verdi@example.com"],
        actor="u",
    )
    crm.register_party(kind="person", given_name="Anna", family_name="Neri", actor="u")
    crm.register_party(kind="organization", name="Verdi S.r.l.", actor="u")
    (pair,) = crm.duplicates()
    assert {pair.party_id, pair.other_id} == {a, b}
    assert pair.score >= 0.5
    assert {r.field for r in pair.reasons if r.level == "exact"} >= {"birth_date", "family_name"}


def test_a_merged_party_leaves_the_duplicates_report(crm: CRM) -> None:
    a = crm.register_party(kind="organization", name="ACME S.p.A.", vat_number="IT00743110157", actor="u")
    b = crm.register_party(kind="organization", name="Acme SpA", web_links=["https://acme.it"], actor="u")
    crm.update_identity(a, web_links=["https://www.acme.it/"], actor="u")
    assert [(p.party_id, p.other_id) for p in crm.duplicates()] in ([(a, b)], [(b, a)])
    crm.merge(a, b, actor="u", reason="same company")
    assert crm.duplicates() == []


def test_an_import_is_checked_against_the_store_and_against_itself_before_it_lands(crm: CRM) -> None:
    known = crm.register_party(
        kind="person", given_name="Mario", family_name="Rossi", emails=["mario.rossi@acme.it"], actor="u"
    )
    position = crm.position
    rows = [
        {"kind": "person", "given_name": "Giulia", "family_name": "Bianchi", "email": "giulia@ex.it"},
        {"kind": "person", "given_name": "Mario", "family_name": "Rossi", "email": "MARIO.ROSSI@acme.it"},
        {
            "kind": "person",
            "given_name": "Giulia",
            "family_name": "Bianchi",
            "email": "giulia@ex.it",
            "phone": "not a phone",
        },
        {"kind": "person", "given_name": "Paolo", "family_name": "Conte"},
    ]
    pairs = {(str(m.party_id), str(m.other_id)) for m in crm.check_import(rows)}
    assert pairs == {("row 0", "row 2"), (str(known), "row 1")}
    assert crm.position == position  # checking stores nothing
