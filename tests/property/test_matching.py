"""Duplicate detection: scores are symmetric probabilities, copies match, find() agrees with compare()."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.matching import Detector, MatchRecord, _compare_fields, _prepare

# Small alphabets, so that generated records often share names, keys and blocks.
_GIVEN = st.sampled_from(["Mario", "Maria", "Marco", "Beppe", "Giuseppe", "Anna", "Ana", "Luca", "Rossi"])
_FAMILY = st.sampled_from(["Rossi", "Rosi", "Bianchi", "De Luca", "Deluca", "Mario", "Conti", "Ferri"])
_EMAILS = st.lists(
    st.sampled_from(["a@x.it", "b@x.it", "mrossi@x.it", "mrossi@y.it", "info@z.it"]), max_size=2
)
_PHONES = st.lists(st.sampled_from(["+393331234567", "+393331234568", "+390612345678"]), max_size=2)
_DATES = st.sampled_from([None, "1980-01-02", "1980-02-01", "1980-01-03", "1980-03-01", "1975-06-30"])
_PLACES = st.sampled_from(
    [
        {},
        {"street": "Via Roma", "house_number": "1", "postcode": "00100", "locality": "Roma"},
        {"street": "V. Roma", "postcode": "00100"},
        {"street": "Corso Po", "locality": "Torino"},
    ]
)
_ORG_NAMES = st.sampled_from(["Acme S.r.l.", "ACME SRL", "Acme Costruzioni", "Delta S.p.A.", "Delta"])
_VATS = st.none() | st.sampled_from(["IT00000010015", "IT00000020013", "IT0000001001"])


@st.composite
def _records(draw: st.DrawFn, record_id: str = "r", kind: str | None = None) -> MatchRecord:
    place = draw(_PLACES)
    if (kind or draw(st.sampled_from(["person", "organization"]))) == "person":
        split = draw(st.booleans())
        given_name, family_name = draw(_GIVEN), draw(_FAMILY)
        return MatchRecord(
            id=record_id,
            kind="person",
            given_name=given_name if split else None,
            family_name=family_name if split else None,
            name=None if split else f"{given_name} {family_name}",
            organization_name=draw(st.none() | _ORG_NAMES),
            emails=tuple(draw(_EMAILS)),
            phones=tuple(draw(_PHONES)),
            birth_date=draw(_DATES),
            **place,
        )
    return MatchRecord(
        id=record_id,
        kind="organization",
        name=draw(_ORG_NAMES),
        emails=tuple(draw(_EMAILS)),
        phones=tuple(draw(_PHONES)),
        vat=draw(_VATS),
        web_links=tuple(draw(st.lists(st.sampled_from(["acme.it", "delta.com"]), max_size=1))),
        **place,
    )


@st.composite
def _record_lists(draw: st.DrawFn) -> list[MatchRecord]:
    size = draw(st.integers(min_value=0, max_value=12))
    return [draw(_records(f"r{i:02d}")) for i in range(size)]


def _has_identifier(record: MatchRecord) -> bool:
    return bool(
        record.emails or record.phones or record.birth_date or record.vat or record.web_links or record.street
    )


@settings(max_examples=200, deadline=None)
@given(_records("a"), _records("b"))
def test_compare_gives_the_same_score_and_levels_whichever_record_comes_first(
    a: MatchRecord, b: MatchRecord
) -> None:
    detector = Detector()
    forward, backward = detector.compare(a, b), detector.compare(b, a)
    assert forward.score == backward.score
    assert (forward.a, forward.b) == (backward.a, backward.b) == ("a", "b")
    assert 0.0 <= forward.score <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.data(), st.sampled_from(["person", "organization"]))
def test_each_field_compares_alike_whichever_record_comes_first(data: st.DataObject, kind: str) -> None:
    a, b = data.draw(_records("a", kind)), data.draw(_records("b", kind))
    assert _levels(a, b) == _levels(b, a)


def _levels(a: MatchRecord, b: MatchRecord) -> list[tuple[str, str]]:
    """Each field's level; given and family names only as a pair (swapped names cross the labels)."""
    levels = [(f[0], f[4]) for f in _compare_fields(_prepare(a), _prepare(b))]
    names = sorted(level for field, level in levels if field in ("given_name", "family_name"))
    return [*(f for f in levels if f[0] not in ("given_name", "family_name")), *(("names", n) for n in names)]


@settings(max_examples=100, deadline=None)
@given(_records("a"))
def test_a_named_record_with_an_identifier_matches_a_copy_of_itself(record: MatchRecord) -> None:
    copy = replace(record, id="b")
    detector = Detector()
    if _has_identifier(record):
        assert detector.compare(record, copy).score >= detector.threshold
    assert all(r.level in ("exact", "missing") for r in detector.compare(record, copy).reasons)


@settings(max_examples=60, deadline=None)
@given(_record_lists(), st.floats(min_value=0.0, max_value=1.0))
def test_find_reports_exactly_the_blocked_pairs_that_compare_at_or_above_the_threshold(
    records: list[MatchRecord], threshold: float
) -> None:
    detector = Detector(threshold=threshold)
    found = detector.find(records)
    pairs = [(c.a, c.b) for c in found]
    assert len(pairs) == len(set(pairs))
    assert all(a < b for a, b in pairs)
    assert all(0.0 <= c.score <= 1.0 for c in found)
    assert [c.weight for c in found] == sorted((c.weight for c in found), reverse=True)
    expected = set()
    for a, b in combinations(records, 2):
        blocked = not set(_prepare(a).keys).isdisjoint(_prepare(b).keys)
        if blocked and detector.compare(a, b).score >= threshold:
            expected.add((min(a.id, b.id), max(a.id, b.id)))
    assert set(pairs) == expected


@settings(max_examples=40, deadline=None)
@given(_record_lists(), st.integers(min_value=0, max_value=12))
def test_the_import_check_is_find_restricted_to_pairs_with_a_new_record(
    records: list[MatchRecord], split: int
) -> None:
    new, existing = records[:split], records[split:]
    detector = Detector()
    new_ids = {r.id for r in new}
    expected = {(c.a, c.b) for c in detector.find(records) if c.a in new_ids or c.b in new_ids}
    assert {(c.a, c.b) for c in detector.find_between(new, existing)} == expected


_GARBAGE = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=True),
    st.lists(st.text(max_size=10), max_size=3),
    st.dates(),
)


@settings(max_examples=120, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "given_name",
                "family_name",
                "name",
                "organization_name",
                "email",
                "emails",
                "phone",
                "birth_date",
                "street",
                "house_number",
                "postcode",
                "locality",
                "country",
                "vat",
                "web_links",
                "website",
                "other",
            ]
        ),
        _GARBAGE,
    ),
    st.sampled_from(["person", "organization", "Organisation", "company"]),
)
def test_from_raw_reads_any_garbage_without_raising(raw: dict[str, object], kind: str) -> None:
    record = MatchRecord.from_raw("row", kind, **raw)
    assert record.kind in ("person", "organization")
    assert 0.0 <= Detector().compare(record, replace(record, id="copy")).score <= 1.0


@settings(max_examples=60, deadline=None)
@given(_record_lists(), st.data())
def test_swapped_names_never_weigh_more_than_the_same_names_the_right_way_round(
    records: list[MatchRecord], data: st.DataObject
) -> None:
    person = data.draw(_records("a", "person"))
    if not (person.given_name and person.family_name):
        return
    detector = Detector().fitted([*records, person])
    copy = replace(person, id="b")
    swapped = replace(copy, given_name=person.family_name, family_name=person.given_name)
    straight_weight = sum(
        r.weight for r in detector.compare(person, copy).reasons if r.field in ("given_name", "family_name")
    )
    swapped_weight = sum(
        r.weight
        for r in detector.compare(person, swapped).reasons
        if r.field in ("given_name", "family_name")
    )
    assert swapped_weight <= straight_weight + 1e-9
