"""Bulk registration and bulk updates on every store: same parties as one by one, all-or-nothing input."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import RFC_4122, UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from crmcore import (
    CRM,
    Change,
    InvalidInput,
    PartyKind,
    PartyNotFound,
    Stage,
    _bulk,
)

EARLIER = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)

#: Rows covering every field a registration takes.
ROWS: list[dict[str, Any]] = [
    {"kind": "person", "name": "  Ada Lovelace ", "actor": "import", "stage": "lead",
     "organization_name": "Analytical Engines", "channel": "web_form", "owner": "rep-1",
     "profile": {"industry": "computing", "employees": 12, "newsletter": True, "interests": ["math"],
                 "dropped": None},
     "effective_at": EARLIER},
    {"kind": "organization", "name": "Globex", "actor": "import", "contact_name": "Hank Scorpio",
     "effective_at": datetime(2024, 3, 1, 11, 30, tzinfo=timezone(timedelta(hours=2)))},
    {"kind": "person", "name": "Grace Hopper", "actor": "import", "stage": "customer", "owner": "rep-2"},
    {"kind": "organization", "name": "Initech", "actor": "import", "stage": "target", "channel": "event",
     "profile": {"employees": 2**63 - 1}},
    {"kind": "person", "name": "Alan Turing", "actor": "import"},
]

#: Fields that differ between two registrations of the same row.
IDENTITY_AND_TIMES = {"id", "registered_at"}


def view_without_identity(crm: CRM, party_id: UUID, row: dict[str, Any]) -> dict[str, Any]:
    view = crm.get_party(party_id).model_dump()
    ignored = IDENTITY_AND_TIMES | (set() if "effective_at" in row else {"last_effective_at"})
    return {k: v for k, v in view.items() if k not in ignored}


def event_state(change: Change) -> dict[str, Any]:
    """What an event says, apart from which party it is and when it was recorded."""
    data = dict(change.data)
    return {"event": change.event, "version": change.version, "actor": change.actor, **data}


def many_rows(count: int) -> list[dict[str, Any]]:
    return [
        {"kind": "person" if i % 3 else "organization", "name": f"Party {i}", "actor": "import",
         "stage": "lead" if i % 2 else "suspect", "owner": f"rep-{i % 4}" if i % 5 else None,
         "profile": {"segment": f"s{i % 7}"}}
        for i in range(count)
    ]


# ---------------------------------------------------------------------- bulk_register


def test_bulk_registered_parties_read_back_like_parties_registered_one_by_one(crm: CRM) -> None:
    single = [crm.register_party(**row) for row in ROWS]
    bulk = crm.bulk_register(ROWS)
    assert len(bulk) == len(ROWS)
    for row, one, many in zip(ROWS, single, bulk, strict=True):
        assert view_without_identity(crm, many, row) == view_without_identity(crm, one, row)
    ada = crm.get_party(bulk[0])
    assert (ada.name, ada.stage, ada.owner) == ("Ada Lovelace", Stage.LEAD, "rep-1")
    assert ada.profile == {
        "industry": "computing", "employees": 12, "newsletter": True, "interests": ["math"]
    }
    assert ada.last_effective_at == EARLIER
    assert crm.get_party(bulk[3]).profile == {"employees": 2**63 - 1}


def test_bulk_registered_timelines_match_parties_registered_one_by_one(crm: CRM) -> None:
    single = [crm.register_party(**row) for row in ROWS]
    bulk = crm.bulk_register(ROWS)
    for row, one, many in zip(ROWS, single, bulk, strict=True):
        (a,), (b,) = crm.timeline(one), crm.timeline(many)
        assert (b.event, b.version, b.actor, b.data, b.changes.keys()) == (
            a.event, a.version, a.actor, a.data, a.changes.keys()
        )
        if "effective_at" in row:
            assert b.effective_at == a.effective_at == row["effective_at"]


@pytest.mark.parametrize(
    "settings_crm", ["plain", "compressed", "encrypted", "encrypted and compressed"], indirect=True
)
def test_bulk_registered_events_decode_through_the_normal_mapper(settings_crm: CRM) -> None:
    crm = settings_crm
    single = [crm.register_party(**row) for row in ROWS]
    after_single = crm.position
    bulk = crm.bulk_register(ROWS, batch_size=2)
    by_party = {c.aggregate_id: c for c in crm.changes()}
    assert {c.aggregate_id for c in crm.changes(after=after_single)} == set(bulk)
    for one, many in zip(single, bulk, strict=True):
        assert event_state(by_party[many]) == event_state(by_party[one])
        assert by_party[many].recorded_at <= datetime.now(UTC)
    stored = crm._app.recorder.select_notifications(start=after_single + 1, limit=100)
    assert len(stored) == len(ROWS)
    decoded = [crm._app.mapper.to_domain_event(s) for s in stored]
    assert [e.originator_id for e in decoded] == bulk
    if crm.settings.cipher_key is not None or crm.settings.compress:
        assert all(b"Lovelace" not in s.state for s in stored)


def test_bulk_registered_ids_are_time_ordered_uuid7_and_unique(crm: CRM) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    first = crm.bulk_register(many_rows(30), batch_size=7)
    second = crm.bulk_register(many_rows(30), batch_size=1000)
    ids = first + second
    assert len(set(ids)) == len(ids) == 60
    assert ids == sorted(ids), "ids increase within and across calls"
    assert all(i.version == 7 and i.variant == RFC_4122 for i in ids)
    for party_id in (ids[0], ids[-1]):
        millis = party_id.int >> 80
        moment = datetime.fromtimestamp(millis / 1000, UTC)
        assert started <= moment <= datetime.now(UTC) + timedelta(seconds=1)


def test_bulk_register_accepts_any_iterable_and_an_empty_one(crm: CRM) -> None:
    assert crm.bulk_register([]) == []
    assert crm.position == 0
    ids = crm.bulk_register(row for row in many_rows(3))
    assert [crm.get_party(i).name for i in ids] == ["Party 0", "Party 1", "Party 2"]


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"name": 42}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "half a surrogate \udc80"}, "name"),
        ({"effective_at": datetime(2024, 1, 1, 12, 0)}, "effective_at"),
        ({"kind": "person", "stage": "target"}, "cannot be registered as target"),
        ({"kind": "organization", "stage": "prospect"}, "cannot be registered as prospect"),
        ({"stage": "disqualified"}, "cannot be registered as disqualified"),
        ({"kind": "organization", "organization_name": "Acme"}, "organization_name"),
        ({"kind": "person", "contact_name": "Bob"}, "contact_name"),
        ({"effective_at": datetime.now(UTC) + timedelta(days=1)}, "future"),
        ({"profile": {"Bad Key": "x"}}, "profile"),
        ({"profile": {"employees": 2**70}}, "64 bits"),
        ({"profile": {"score": 1.5}}, "not float"),
        ({"nickname": "Ace"}, "nickname"),
        ({"kind": "robot"}, "kind"),
        ({"actor": ""}, "actor"),
    ],
)
def test_a_batch_with_one_bad_row_raises_invalid_input_naming_the_row_and_stores_nothing(
    crm: CRM, bad: dict[str, Any], says: str
) -> None:
    crm.register_party(kind="person", name="Already here", actor="u")
    before = crm.position
    rows = many_rows(2500)
    rows[1777] = {**rows[1777], **bad}
    with pytest.raises(InvalidInput) as raised:
        crm.bulk_register(rows, batch_size=100)
    message = str(raised.value)
    assert "row 1777" in message
    assert says in message
    assert [e["loc"][0] for e in raised.value.errors] == [1777] * len(raised.value.errors) != []
    assert crm.position == before
    assert crm.party_counts().total == 1


def test_every_bad_row_is_reported_at_once(crm: CRM) -> None:
    rows = many_rows(2100)
    rows[5] = {**rows[5], "name": ""}
    rows[1500] = {**rows[1500], "kind": "person", "stage": "target"}
    rows[2099] = {**rows[2099], "effective_at": datetime(2024, 1, 1)}
    with pytest.raises(InvalidInput) as raised:
        crm.bulk_register(rows)
    assert {e["loc"][0] for e in raised.value.errors} == {5, 1500, 2099}
    assert all(f"row {i}" in str(raised.value) for i in (5, 1500, 2099))
    assert crm.position == 0


def test_the_parties_view_counts_bulk_registered_parties(crm: CRM) -> None:
    crm.register_party(kind="person", name="One by one", actor="u", owner="rep-0")
    rows = many_rows(250)
    crm.bulk_register(rows, batch_size=60)
    counts = crm.party_counts()
    assert counts.total == 251
    assert counts.by_kind[PartyKind.ORGANIZATION] == sum(r["kind"] == "organization" for r in rows)
    assert counts.by_stage[Stage.LEAD] == sum(r["stage"] == "lead" for r in rows)
    assert counts.by_owner["rep-0"] == 1 + sum(r["owner"] == "rep-0" for r in rows)
    assert counts.unassigned == sum(r["owner"] is None for r in rows)
    leads = crm.parties(stage="lead", owner="rep-1")
    assert {p.name for p in leads} == {
        r["name"] for r in rows if r["stage"] == "lead" and r["owner"] == "rep-1"
    }


def test_subscribers_are_told_of_bulk_registered_parties_batch_by_batch(crm: CRM) -> None:
    told: list[list[Change]] = []
    crm.subscribe(lambda changes: told.append(list(changes)))
    before = crm.position
    ids = crm.bulk_register(many_rows(5), batch_size=2)
    assert [len(batch) for batch in told] == [2, 2, 1]
    changes = [c for batch in told for c in batch]
    assert [c.aggregate_id for c in changes] == ids
    assert {(c.event, c.aggregate_type, c.version) for c in changes} == {("Registered", "Party", 1)}
    assert [c.data["name"] for c in changes] == [f"Party {i}" for i in range(5)]
    positions = [c.position for c in changes]
    assert positions == sorted(positions)
    assert before < positions[0] <= positions[-1] == crm.position
    assert [c.position for c in crm.changes(after=before)] == positions


# ---------------------------------------------------------------------- bulk_update


def test_bulk_update_changes_owners_and_profiles(crm: CRM) -> None:
    a, b, c = crm.bulk_register(
        [{"kind": "person", "name": n, "actor": "u", "owner": "rep-1", "profile": {"tier": "gold", "x": 1}}
         for n in "abc"]
    )
    changed = crm.bulk_update([
        {"party_id": a, "owner": "rep-2", "actor": "sync"},
        {"party_id": str(b), "profile": {"tier": "silver", "x": None}, "actor": "sync"},
        {"party_id": c, "owner": None, "profile": {"new": True}, "actor": "sync",
         "effective_at": datetime.now(UTC)},
    ])
    assert changed == 3
    pa, pb, pc = (crm.get_party(p) for p in (a, b, c))
    assert (pa.owner, pa.profile) == ("rep-2", {"tier": "gold", "x": 1})
    assert (pb.owner, pb.profile) == ("rep-1", {"tier": "silver"})
    assert (pc.owner, pc.profile) == (None, {"tier": "gold", "x": 1, "new": True})
    assert [e.event for e in crm.timeline(c)] == ["Registered", "Assigned", "ProfileUpdated"]
    assert crm.party_counts().by_owner == {"rep-1": 1, "rep-2": 1}


def test_bulk_update_of_unchanged_values_records_nothing(crm: CRM) -> None:
    (a,) = crm.bulk_register([{"kind": "person", "name": "a", "actor": "u", "owner": "rep-1"}])
    before = crm.position
    assert crm.bulk_update([{"party_id": a, "owner": "rep-1", "actor": "u"}]) == 0
    assert crm.position == before


def test_bulk_update_of_an_unknown_party_raises_and_stores_nothing_for_its_batch(crm: CRM) -> None:
    a, _, _ = crm.bulk_register([{"kind": "person", "name": n, "actor": "u"} for n in "abc"])
    before = crm.position
    with pytest.raises(PartyNotFound):
        crm.bulk_update([
            {"party_id": a, "owner": "rep-9", "actor": "u"},
            {"party_id": uuid4(), "owner": "rep-9", "actor": "u"},
        ])
    assert crm.position == before
    assert crm.get_party(a).owner is None


def test_bulk_update_is_atomic_per_batch(crm: CRM) -> None:
    a, b, c = crm.bulk_register([{"kind": "person", "name": n, "actor": "u"} for n in "abc"])
    with pytest.raises(PartyNotFound):
        crm.bulk_update(
            [
                {"party_id": a, "owner": "rep-9", "actor": "u"},
                {"party_id": b, "owner": "rep-9", "actor": "u"},
                {"party_id": c, "owner": "rep-9", "actor": "u"},
                {"party_id": uuid4(), "owner": "rep-9", "actor": "u"},
            ],
            batch_size=2,
        )
    assert [crm.get_party(p).owner for p in (a, b, c)] == ["rep-9", "rep-9", None]


def test_bulk_update_validates_every_row_before_storing_anything(crm: CRM) -> None:
    (a,) = crm.bulk_register([{"kind": "person", "name": "a", "actor": "u"}])
    before = crm.position
    with pytest.raises(InvalidInput):
        crm.bulk_update(
            [{"party_id": a, "owner": "rep-1", "actor": "u"}, {"party_id": "not-a-uuid", "actor": "u"}],
            batch_size=1,
        )
    assert crm.position == before


def test_subscribers_are_told_of_bulk_updates(crm: CRM) -> None:
    a, b = crm.bulk_register([{"kind": "person", "name": n, "actor": "u"} for n in "ab"])
    told: list[Change] = []
    crm.subscribe(told.extend)
    crm.bulk_update([{"party_id": a, "owner": "rep-1", "actor": "u"},
                     {"party_id": b, "profile": {"k": "v"}, "actor": "u"}])
    assert [(c.aggregate_id, c.event) for c in told] == [(a, "Assigned"), (b, "ProfileUpdated")]


# ---------------------------------------------------------------------- the SQLite recorder's batches


@pytest.fixture
def sqlite_crm(tmp_path: os.PathLike[str]) -> Iterator[CRM]:
    with CRM(f"sqlite:///{os.fspath(tmp_path)}/crm.db") as crm:
        yield crm


def stored_row(crm: CRM, name: str) -> tuple[str, int, str, bytes]:
    (event,), _ = _bulk.registered_events([{"kind": "person", "name": name, "actor": "u"}], crm._app.mapper)
    return (event.originator_id.hex, 1, event.topic, event.state)


def test_a_failing_sqlite_batch_is_rolled_back_and_earlier_batches_stay(sqlite_crm: CRM) -> None:
    crm = sqlite_crm
    first, second = stored_row(crm, "first"), stored_row(crm, "second")
    told: list[list[int]] = []
    with pytest.raises(IntegrityError):
        crm._app.recorder.insert_row_batches(  # type: ignore[attr-defined]
            [[first], [second, first]], lambda rows, positions: told.append(positions)
        )
    assert told == [[1]]
    assert crm.position == 1
    assert crm.get_party(UUID(first[0])).name == "first"
    with pytest.raises(PartyNotFound):
        crm.get_party(UUID(second[0]))
    assert crm.register_party(kind="person", name="afterwards", actor="u")
    assert crm.position == 2


def test_an_error_while_building_the_next_sqlite_batch_keeps_the_committed_ones(sqlite_crm: CRM) -> None:
    crm = sqlite_crm
    first = stored_row(crm, "first")

    def batches() -> Iterator[list[tuple[str, int, str, bytes]]]:
        yield [first]
        raise RuntimeError("the source ran dry")

    told: list[list[int]] = []
    with pytest.raises(RuntimeError, match="ran dry"):
        crm._app.recorder.insert_row_batches(  # type: ignore[attr-defined]
            batches(), lambda rows, positions: told.append(positions)
        )
    assert told == [[1]]
    assert crm.get_party(UUID(first[0])).name == "first"
    assert len(crm.bulk_register(many_rows(3))) == 3
    assert crm.position == 4


@pytest.mark.parametrize(
    "settings_crm", ["plain", "compressed", "encrypted", "encrypted and compressed"], indirect=True
)
def test_bulk_registered_identity_values_and_claims_decode_under_every_setting(settings_crm: CRM) -> None:
    crm = settings_crm
    rows = [
        {"kind": "person", "given_name": "Ada", "family_name": "Lovelace", "emails": ["ada@example.com"],
         "phones": ["+44 20 7946 0958"], "actor": "import"},
        {"kind": "organization", "name": "ACME S.p.A.", "vat_number": "IT00743110157", "actor": "import"},
    ]
    ada, acme = crm.bulk_register(rows, batch_size=1)
    assert crm.get_party(ada).emails == ["ada@example.com"]
    assert crm.get_party(acme).vat_number == "IT00743110157"
    assert crm.holder_of(email="ADA@example.com") == ada
    assert crm.holder_of(phone="+442079460958") == ada
    assert crm.holder_of(vat_number="IT00743110157") == acme
    crm.remove_email(ada, "ada@example.com", actor="u")  # a released claim is taken over in bulk
    (again,) = crm.bulk_register([{"kind": "person", "name": "Other", "emails": ["ada@example.com"],
                                   "actor": "import"}])
    assert crm.holder_of(email="ada@example.com") == again
    if crm.settings.cipher_key is not None or crm.settings.compress:
        stored = crm._app.recorder.select_notifications(start=1, limit=100)
        assert all(b"ada@example.com" not in s.state for s in stored)
