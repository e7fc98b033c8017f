"""Duplicate detection finds the same party written differently, and never pairs what cannot match."""

from __future__ import annotations

import pytest
from stdnum.it import iva

from crmcore.exceptions import InvalidInput
from crmcore.matching import Detector, DuplicateCandidate, FieldEvidence, MatchRecord, clusters
from crmcore.testing.synthetic import synthetic_parties


def _person(id: str, given: str, family: str, **fields: object) -> MatchRecord:
    return MatchRecord(id=id, kind="person", given_name=given, family_name=family, **fields)  # type: ignore[arg-type]


def _reason(candidate: DuplicateCandidate, field: str) -> FieldEvidence:
    return next(r for r in candidate.reasons if r.field == field)


def test_the_same_email_with_a_different_name_spelling_is_a_candidate_with_an_exact_email_reason() -> None:
    a = _person("a", "Mario", "Rossi", emails=("mario.rossi@example.it",))
    b = _person("b", "Marion", "Rosi", emails=("mario.rossi@example.it",))
    found = Detector().find([a, b])
    assert [(c.a, c.b) for c in found] == [("a", "b")]
    email = _reason(found[0], "email")
    assert (email.level, email.a, email.b) == ("exact", "mario.rossi@example.it", "mario.rossi@example.it")
    assert email.weight > 10


def test_swapped_given_and_family_names_are_detected() -> None:
    a = _person("a", "Giulia", "Bernardi", birth_date="1985-03-14")
    b = _person("b", "Bernardi", "Giulia", birth_date="1985-03-14")
    found = Detector().find([a, b])
    assert len(found) == 1
    assert _reason(found[0], "family_name").level == "exact"
    assert _reason(found[0], "given_name").level == "exact"


def test_a_nickname_and_a_transposed_birth_date_still_match() -> None:
    a = _person("a", "Giuseppe", "Esposito", birth_date="1971-04-09", phones=("+393471234567",))
    b = _person("b", "Beppe", "Esposito", birth_date="1971-09-04", phones=("+393471234567",))
    candidate = Detector().compare(a, b)
    assert candidate.score >= Detector().threshold
    assert _reason(candidate, "given_name").level == "close"
    assert _reason(candidate, "birth_date").level == "close"


def test_a_person_and_an_organization_are_never_paired() -> None:
    person = MatchRecord(
        id="p", kind="person", name="Acme", emails=("info@acme.it",), phones=("+390212345678",)
    )
    organization = MatchRecord(
        id="o", kind="organization", name="Acme", emails=("info@acme.it",), phones=("+390212345678",)
    )
    detector = Detector(threshold=0.0)
    assert detector.find([person, organization]) == []
    assert detector.compare(person, organization).score == 0.0
    assert detector.candidates_for(person, [organization], threshold=0.0) == []


def test_relatives_sharing_a_phone_and_an_address_are_not_one_person() -> None:
    home = {
        "phones": ("+390612345678",),
        "street": "Via Roma",
        "house_number": "3",
        "postcode": "00184",
        "locality": "Roma",
    }
    a = _person("a", "Luca", "Ferri", **home)
    b = _person("b", "Chiara", "Ferri", **home)
    assert Detector().find([a, b]) == []


def test_different_vat_numbers_keep_similar_companies_apart() -> None:
    a = MatchRecord(id="a", kind="organization", name="Delta Impianti S.r.l.", vat="IT" + _vat("0000001001"))
    b = MatchRecord(id="b", kind="organization", name="Delta Impianti SRL", vat="IT" + _vat("0000002001"))
    assert Detector().compare(a, b).score < 0.01


def _vat(first_ten: str) -> str:
    from stdnum import luhn

    number = first_ten + luhn.calc_check_digit(first_ten)
    assert iva.is_valid(number)
    return number


def test_the_import_check_reports_new_against_existing_and_new_against_new_but_not_existing_pairs() -> None:
    existing = [
        _person("e1", "Anna", "Conti", emails=("anna.conti@example.it",)),
        _person("e2", "Anna", "Conti", emails=("anna.conti@example.it",)),
    ]
    new = [
        _person("n1", "ANNA", "CONTI", emails=("anna.conti@example.it",)),
        _person("n2", "Paolo", "Greco", phones=("+393331112222",)),
        _person("n3", "Paolo", "Grecco", phones=("+393331112222",)),
    ]
    pairs = {(c.a, c.b) for c in Detector().find_between(new, existing)}
    assert pairs == {("e1", "n1"), ("e2", "n1"), ("n2", "n3")}


def test_candidates_for_one_entry_returns_the_nearest_existing_records_best_first() -> None:
    entry = _person("new", "Marco", "Gallo", emails=("marco.gallo@example.it",), birth_date="1990-01-02")
    existing = [
        _person("x1", "Marco", "Gallo", emails=("marco.gallo@example.it",), birth_date="1990-01-02"),
        _person("x2", "Marco", "Galli", emails=("marco.gallo@example.it",)),
        _person("x3", "Sara", "Neri", emails=("sara.neri@example.it",)),
    ]
    found = Detector().candidates_for(entry, existing, limit=5)
    assert [c.b if c.a == "new" else c.a for c in found] == ["x1", "x2"]
    assert Detector().candidates_for(entry, existing, limit=1)[0].score >= found[1].score


def test_from_raw_normalises_email_phone_vat_and_birth_date() -> None:
    record = MatchRecord.from_raw(
        "row-1",
        "person",
        given_name="  Mario ",
        family_name="Rossi",
        email="Mario.Rossi@Example.COM; x@y",
        phone="06 1234 5678",
        vat="IT " + _vat("0111460100")[:11],
        birth_date="14/03/1985",
        website="www.example.it/",
        country="it",
        unknown_column="ignored",
    )
    assert record.given_name == "Mario"
    assert record.emails == ("mario.rossi@example.com",)
    assert record.phones == ("+390612345678",)
    assert record.vat is not None
    assert record.vat.startswith("IT")
    assert record.birth_date == "1985-03-14"
    assert record.web_links == ("www.example.it",)
    assert record.country == "IT"


def test_from_raw_keeps_garbage_as_cleaned_text_or_drops_it_without_raising() -> None:
    record = MatchRecord.from_raw(
        "row-2",
        "organisation",
        name="\x00\x07",
        email="not an email",
        phone="call me",
        vat="???",
        birth_date="yesterday",
        country="Narnia",
        web_links=["", "ht!tp://"],
        postcode=12345,
    )
    assert record.kind == "organization"
    assert (record.name, record.emails, record.phones, record.vat, record.birth_date) == (
        None,
        (),
        (),
        None,
        None,
    )
    assert record.country is None
    assert record.postcode == "12345"


def test_clusters_are_the_connected_components_of_the_candidates() -> None:
    def pair(a: str, b: str) -> DuplicateCandidate:
        return DuplicateCandidate(a, b, 0.9, 5.0, ())

    assert clusters([pair("a", "b"), pair("c", "d"), pair("b", "e")]) == [{"a", "b", "e"}, {"c", "d"}]


def test_the_synthetic_set_is_reproducible_and_has_between_ten_and_twenty_percent_duplicates() -> None:
    first, second = synthetic_parties(600, seed=3), synthetic_parties(600, seed=3)
    assert first == second
    duplicates = len(first.records) - len(set(first.entity_of.values()))
    assert 0.10 <= duplicates / len(first.records) <= 0.20
    assert any(
        len(c) == 3 for c in clusters(DuplicateCandidate(a, b, 1, 1, ()) for a, b in first.true_pairs())
    )
    vats = [r.vat for r in first.records if r.vat]
    assert vats
    assert all(iva.is_valid(v[2:]) for v in vats)


def test_the_detector_finds_most_duplicates_of_a_small_synthetic_set_with_few_false_alarms() -> None:
    data = synthetic_parties(2000, seed=11)
    truth = data.true_pairs()
    found = {(c.a, c.b) for c in Detector().fitted(data.records).find(data.records)}
    precision = len(found & truth) / len(found)
    recall = len(found & truth) / len(truth)
    assert precision >= 0.85
    assert recall >= 0.8


def test_a_nickname_against_a_misspelt_full_name_is_close() -> None:
    a = _person("a", "Mimmo", "Ferrari", birth_date="1971-04-09")
    b = _person("b", "Domeico", "Ferrari", birth_date="1971-04-09")
    assert _reason(Detector().compare(a, b), "given_name").level == "close"


def test_a_short_name_one_keystroke_off_is_close_but_another_short_name_is_not() -> None:
    detector = Detector()
    typo = detector.compare(_person("a", "Rosa", "Genese"), _person("b", "Roca", "Genese"))
    other = detector.compare(_person("a", "Rosa", "Genese"), _person("b", "Rita", "Genese"))
    assert _reason(typo, "given_name").level == "close"
    assert _reason(other, "given_name").level == "different"


def test_an_organization_name_with_shortened_words_is_close() -> None:
    def organization(id: str, name: str) -> MatchRecord:
        return MatchRecord(id=id, kind="organization", name=name)

    detector = Detector()
    short = detector.compare(
        organization("a", "Ferronova Costruzioni S.r.l."), organization("b", "Ferronova Costr. SRL")
    )
    other = detector.compare(
        organization("a", "Ferronova Costruzioni S.r.l."), organization("b", "Ferrotech Costruzioni SRL")
    )
    assert _reason(short, "organization_name").level == "close"
    assert _reason(other, "organization_name").level == "different"


def test_the_same_names_as_another_mailbox_at_one_provider_are_not_an_email_typo() -> None:
    detector = Detector()
    dotted = detector.compare(
        _person("a", "Li", "Popescu", emails=("li.popescu@yahoo.it",)),
        _person("b", "Li", "Popescu", emails=("lpopescu@yahoo.it",)),
    )
    numbered = detector.compare(
        _person("a", "Mario", "Rossi", emails=("mario.rossi@libero.it",)),
        _person("b", "Mario", "Rossi", emails=("mariorossi7@libero.it",)),
    )
    typo = detector.compare(
        _person("a", "Mario", "Rossi", emails=("mario.rossi@libero.it",)),
        _person("b", "Mario", "Rossi", emails=("mario.rosi@libero.it",)),
    )
    assert _reason(dotted, "email").level == "different"
    assert _reason(numbered, "email").level == "different"
    assert _reason(typo, "email").level == "close"


def test_the_standard_profile_is_reproducible_and_each_duplicate_differs_in_one_to_three_fields() -> None:
    first = synthetic_parties(600, seed=3, profile="standard")
    assert first == synthetic_parties(600, seed=3, profile="standard")
    assert first != synthetic_parties(600, seed=3)
    duplicates = len(first.records) - len(set(first.entity_of.values()))
    assert 0.10 <= duplicates / len(first.records) <= 0.20
    by_id = {r.id: r for r in first.records}
    sizes: dict[int, int] = {}
    for entity in first.entity_of.values():
        sizes[entity] = sizes.get(entity, 0) + 1
    groups = {
        "names": ("given_name", "family_name", "name"),
        "address": ("street", "house_number", "postcode", "locality", "country"),
        **{f: (f,) for f in ("organization_name", "emails", "phones", "birth_date", "vat", "web_links")},
    }
    for a, b in first.true_pairs():
        if sizes[first.entity_of[a]] == 2:  # an original and its one duplicate
            ra, rb = by_id[a], by_id[b]
            changed = [
                g for g, fields in groups.items() if any(getattr(ra, f) != getattr(rb, f) for f in fields)
            ]
            assert 1 <= len(changed) <= 3, (ra, rb)


def test_an_unknown_synthetic_profile_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match="profile"):
        synthetic_parties(10, profile="easy")


def test_the_detector_keeps_an_f1_above_0_97_on_a_small_standard_set() -> None:
    data = synthetic_parties(2000, seed=5, profile="standard")
    truth = data.true_pairs()
    found = {(c.a, c.b) for c in Detector().fitted(data.records).find(data.records)}
    precision = len(found & truth) / len(found)
    recall = len(found & truth) / len(truth)
    assert 2 * precision * recall / (precision + recall) >= 0.97


def test_a_threshold_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(InvalidInput, match="threshold"):
        Detector(threshold=1.5)


def test_from_raw_refuses_an_unknown_kind_by_name() -> None:
    with pytest.raises(InvalidInput, match="kind"):
        MatchRecord.from_raw("row", "household", name="Rossi")
