"""Bad input to any command is refused with a typed crmcore error, and records nothing.

Every command gets a valid call with one thing spoiled: a field of the wrong type, a blank or over-long
name, an unknown or malformed party id, a naive, future or out-of-order effective time, an unknown
field. Parties sit in stages where the unspoiled command would be accepted, with their last event at a
known past moment, so the error each spoiled call must raise is known exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import (
    CRM,
    DEFAULT_QUALIFICATION,
    ConcurrentUpdateError,
    CrmError,
    EffectiveTimeOutOfOrder,
    FieldNotDefined,
    IllegalTransition,
    InvalidInput,
    PartyNotFound,
)
from crmcore.testing import strategies as cst

settings.register_profile(
    "crmcore-ci", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "crmcore-dev", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow],
)
BASE = settings.get_profile("crmcore-ci" if os.environ.get("CI") else "crmcore-dev")
#: One CRM per store serves every example: nothing may ever be recorded, so nothing leaks between them.
BAD_INPUT = settings(
    BASE, max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

REGISTERED_AT = datetime(2024, 1, 1, 9, tzinfo=UTC)
#: Every party in the scene had its last event at this moment.
LAST_EVENT_AT = datetime(2024, 6, 1, 9, tzinfo=UTC)


@dataclass(frozen=True)
class Scene:
    """Parties each in a state that accepts the commands aimed at it."""

    suspect: UUID
    lead: UUID
    disqualified: UUID
    prospect: UUID
    target: UUID
    set_aside: UUID


@pytest.fixture
def scene(crm: CRM) -> Scene:
    """The parties the spoiled commands aim at, their last events at :data:`LAST_EVENT_AT`."""
    def register(kind: str, stage: str, at: datetime = LAST_EVENT_AT) -> UUID:
        return crm.register_party(kind=kind, stage=stage, name=f"{kind} {stage}", actor="setup",
                                  effective_at=at)

    lead = register("person", "lead")
    disqualified = register("organization", "lead", REGISTERED_AT)
    crm.disqualify(disqualified, reason="no budget", actor="setup", effective_at=LAST_EVENT_AT)
    set_aside = register("person", "suspect", REGISTERED_AT)
    crm.set_aside(set_aside, reason="stale", actor="setup", effective_at=LAST_EVENT_AT)
    return Scene(
        suspect=register("person", "suspect"), lead=lead, disqualified=disqualified,
        prospect=register("person", "prospect"), target=register("organization", "target"),
        set_aside=set_aside,
    )


#: For each command: the party it aims at, and fields that make a call it accepts.
COMMANDS: dict[str, tuple[str, Callable[[Scene], dict[str, Any]]]] = {
    "engage": ("suspect", lambda s: {"channel": "web_form"}),
    "qualify": ("lead", lambda s: {}),
    "disqualify": ("lead", lambda s: {"reason": "no budget"}),
    "reopen": ("disqualified", lambda s: {"reason": "budget found"}),
    "convert": ("prospect", lambda s: {"reference": "ORD-1"}),
    "assign": ("prospect", lambda s: {"owner": "rep-ada"}),
    "link": ("prospect", lambda s: {"organization_id": s.target}),
    "update_profile": ("prospect", lambda s: {"changes": {"interest": "cloud"}}),
    "set_aside": ("suspect", lambda s: {"reason": "stale"}),
    "restore": ("set_aside", lambda s: {"reason": "active again"}),
    "subscribe_to": ("prospect", lambda s: {"channel": "email", "source": "form", "lawful_basis": "consent"}),
    "unsubscribe_from": ("prospect", lambda s: {"channels": "all", "source": "mail tool"}),
    "record_delivery": ("prospect", lambda s: {"address": "ada@example.com", "raw_code": "550"}),
}
#: Commands whose entries may be effective before the party's previous event (late reports).
LEDGER_COMMANDS = frozenset({"subscribe_to", "unsubscribe_from", "record_delivery"})

# ------------------------------------------------------------------------------------------ spoilers
#
# A spoiler is (field, value, error): set ``field`` to ``value`` (``MISSING`` removes it) and expect
# ``error``. ``party_id`` spoils the party argument itself.

MISSING: Any = object()

_not_text = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(),
                      st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(),
                                                                             max_size=1))
_blank = st.sampled_from(("", " ", "   ", "\t", "\n "))
#: Text holding a control character that no crmcore text accepts (tab and line breaks aside).
_with_control = st.builds(
    "{}{}{}".format, st.text("abc", max_size=3), st.sampled_from(("\x00", "\x07", "\x1b", "\x7f")),
    st.text("xyz", max_size=3),
)


def _too_long(limit: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(categories=("L", "N")), min_size=limit + 1, max_size=limit + 30)


def _bad_text(limit: int) -> st.SearchStrategy[Any]:
    return st.one_of(_blank, _too_long(limit), _not_text, _with_control)


#: Not moments at all (numbers are not among them: pydantic reads them, even as text, as Unix times).
_not_a_datetime = st.one_of(
    st.sampled_from(("yesterday", "2024-13-01T00:00:00Z", "", "nan")),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


def _spoil(field: str, values: st.SearchStrategy[Any], error: type[CrmError] = InvalidInput) -> Any:
    return values.map(lambda v: (field, v, error))


def _common_spoilers(
    *, party_command: bool, ordered: bool = True,
) -> st.SearchStrategy[tuple[str, Any, type[CrmError]]]:
    spoilers = [
        _spoil("actor", _bad_text(200)),
        _spoil("actor", st.just(MISSING)),
        _spoil("effective_at", cst.naive_datetimes()),
        _spoil("effective_at", cst.future_datetimes()),
        _spoil("effective_at", _not_a_datetime),
        _spoil("an_unknown_field", st.integers() | st.text(max_size=5)),
    ]
    if party_command and ordered:
        spoilers.append(
            _spoil("effective_at", cst.past_datetimes(max_value=LAST_EVENT_AT.replace(tzinfo=None)
                                                      - timedelta(microseconds=1)), EffectiveTimeOutOfOrder),
        )
    if party_command:
        spoilers += [
            _spoil("party_id", cst.non_uuid_ids()),
            _spoil("party_id", st.uuids(), PartyNotFound),
            _spoil("expected_version", st.sampled_from((0, -1, "two", 1.5, [1]))),
            _spoil("expected_version", st.integers(3, 10**6), ConcurrentUpdateError),
        ]
    return st.one_of(*spoilers)


_bad_changes = st.one_of(
    st.just({}),
    _not_text.filter(lambda v: not isinstance(v, dict)),
    st.dictionaries(st.sampled_from(("Interest", "1st", "has space", "", "x" * 65, "é")), cst.trait_values(),
                    min_size=1, max_size=2),
    st.dictionaries(cst.trait_names(), st.one_of(
        _blank, _too_long(500), st.floats(allow_nan=False).filter(lambda f: not f.is_integer()),
        st.lists(st.integers(), min_size=1, max_size=2),
        st.dictionaries(st.text(max_size=2), st.text(max_size=2), min_size=1, max_size=1),
        st.lists(st.sampled_from(("", "x" * 201)), min_size=1, max_size=2),
        st.lists(st.just("tag"), min_size=101, max_size=102),
    ), min_size=1, max_size=2),
    st.dictionaries(cst.trait_names(), st.just("x"), min_size=101, max_size=101),
)

#: Not a flag: ``require_policy`` takes True or False only.
_not_a_flag = st.one_of(st.sampled_from(("yes", "true", 0, 1, None)), st.lists(st.booleans(), max_size=1))
#: Not a qualification policy (its name, its parts as plain data).
_not_a_policy = st.one_of(st.sampled_from(("BANT", 1, True)),
                          st.fixed_dictionaries({"name": st.just("BANT"), "version": st.just(1)}))

#: Spoilers of each command's own fields.
OWN_SPOILERS: dict[str, st.SearchStrategy[tuple[str, Any, type[CrmError]]]] = {
    "engage": st.one_of(_spoil("channel", st.one_of(st.sampled_from(("fax", "EMAIL", "", None, MISSING)),
                                                    st.integers()))),
    "qualify": st.one_of(_spoil("link_to", cst.non_uuid_ids().filter(lambda v: v is not None)),
                         _spoil("link_to", st.uuids(), PartyNotFound),
                         _spoil("require_policy", _not_a_flag),
                         _spoil("require_policy", st.just(True), FieldNotDefined),  # BANT's fields
                         _spoil("policy", _not_a_policy)),
    "disqualify": st.one_of(_spoil("reason", st.one_of(_bad_text(500), st.just(None), st.just(MISSING))),
                            _spoil("policy", _not_a_policy),
                            _spoil("policy", st.just(DEFAULT_QUALIFICATION), FieldNotDefined)),
    "reopen": _spoil("reason", _bad_text(500)),
    "convert": _spoil("reference", _bad_text(200)),
    "assign": _spoil("owner", st.one_of(_bad_text(200), st.just(MISSING))),
    "link": st.one_of(_spoil("organization_id", cst.non_uuid_ids() | st.just(MISSING)),
                      _spoil("organization_id", st.uuids(), PartyNotFound)),
    "update_profile": _spoil("changes", st.one_of(_bad_changes, st.just(None), st.just(MISSING))),
    "set_aside": _spoil("reason", st.one_of(_bad_text(500), st.just(None), st.just(MISSING))),
    "restore": _spoil("reason", _bad_text(500)),
    "subscribe_to": st.one_of(
        _spoil("channel", st.one_of(st.sampled_from(("fax", "EMAIL", "", None, MISSING)), st.integers())),
        _spoil("lawful_basis", st.sampled_from(("because", "Consent", "", None, MISSING, 6))),
        _spoil("source", st.one_of(_bad_text(200), st.just(None), st.just(MISSING))),
        _spoil("evidence", _bad_text(2000)),
        _spoil("external_id", _bad_text(200)),
    ),
    "unsubscribe_from": st.one_of(
        _spoil("channels", st.sampled_from(("ALL", "email", [], ["email", "fax"], None, MISSING, 3))),
        _spoil("channel", st.sampled_from(("email", "fax"))),  # besides channels, or unknown
        _spoil("source", st.one_of(_bad_text(200), st.just(None), st.just(MISSING))),
        _spoil("evidence", _bad_text(2000)),
    ),
    "record_delivery": st.one_of(
        _spoil("address", st.one_of(st.sampled_from(("ada@", "@example.com", "not an address", "12", "",
                                                     None, MISSING)), _not_text)),
        _spoil("raw_code", st.one_of(st.sampled_from(("whatever", "3.1.1", None)), _bad_text(200))),
        _spoil("outcome", st.sampled_from(("lost", "delivered", "soft_bounce", "", 1))),
        _spoil("region", st.sampled_from(("it", "ITA", "", None))),
        _spoil("external_id", _bad_text(200)),
    ),
}


def _apply(fields: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    spoiled = dict(fields)
    if value is MISSING:
        spoiled.pop(field, None)
    else:
        spoiled[field] = value
    return spoiled


def _assert_refused(crm: CRM, call: Callable[[], Any], error: type[CrmError], party_ids: list[UUID]) -> None:
    position = crm.position
    versions = {p: crm.get_party(p).version for p in party_ids}
    with pytest.raises(error) as raised:
        call()
    assert isinstance(raised.value, CrmError)
    assert crm.position == position, "a refused command recorded something"
    assert {p: crm.get_party(p).version for p in party_ids} == versions


# ------------------------------------------------------------------------------------------ tests

@pytest.mark.parametrize("command", sorted(COMMANDS))
@BAD_INPUT
@given(data=st.data())
def test_a_party_command_with_bad_input_raises_a_typed_error_and_records_nothing(
    crm: CRM, scene: Scene, command: str, data: st.DataObject,
) -> None:
    target_name, valid = COMMANDS[command]
    party_id: Any = getattr(scene, target_name)
    fields = {"actor": "tester", **valid(scene)}
    common = _common_spoilers(party_command=True, ordered=command not in LEDGER_COMMANDS)
    field, value, error = data.draw(st.one_of(OWN_SPOILERS[command], common), label="spoiler")
    if field == "party_id":
        party_id = value
    else:
        fields = _apply(fields, field, value)
    if field == "expected_version" and error is ConcurrentUpdateError:
        assert value != crm.get_party(party_id).version
    method = getattr(crm, command)
    _assert_refused(crm, lambda: method(party_id, **fields), error, list(vars(scene).values()))


@BAD_INPUT
@given(fields=cst.registrations(), spoiler=st.one_of(
    _spoil("name", cst.invalid_names() | st.just(MISSING)),
    _spoil("kind", st.one_of(st.sampled_from(("company", "Person", "", None, MISSING)), st.integers())),
    _spoil("stage", st.one_of(st.sampled_from(("hot", "Lead", "", None)), st.integers())),
    _spoil("stage", st.just("disqualified"), IllegalTransition),
    _spoil("organization_name", _bad_text(200)),
    _spoil("contact_name", _bad_text(200)),
    _spoil("channel", st.sampled_from(("fax", "", 3))),
    _spoil("owner", _bad_text(200)),
    _spoil("profile", _bad_changes.filter(lambda v: v != {})),
    _common_spoilers(party_command=False),
))
def test_registering_with_bad_input_raises_a_typed_error_and_records_nothing(
    crm: CRM, fields: dict[str, Any], spoiler: tuple[str, Any, type[CrmError]],
) -> None:
    field, value, error = spoiler
    fields = _apply(fields, field, value)
    if field in ("organization_name", "contact_name") and error is InvalidInput:
        # A name given on the wrong kind is refused too, whatever it is; keep the spoiled field on the
        # right kind so the error really is about the value.
        fields["kind"] = "person" if field == "organization_name" else "organization"
        fields["stage"] = "lead"
        fields.pop("contact_name" if field == "organization_name" else "organization_name", None)
    _assert_refused(crm, lambda: crm.register_party(**fields), error, [])


@BAD_INPUT
@given(fields=cst.registrations(), wrong=st.sampled_from(("organization_name", "contact_name")),
       name=cst.names())
def test_registering_with_the_other_kinds_counterpart_name_is_refused(
    crm: CRM, fields: dict[str, Any], wrong: str, name: str,
) -> None:
    fields["kind"] = "organization" if wrong == "organization_name" else "person"
    fields["stage"] = "suspect"
    fields.pop("contact_name" if wrong == "organization_name" else "organization_name", None)
    fields[wrong] = name
    _assert_refused(crm, lambda: crm.register_party(**fields), InvalidInput, [])


@BAD_INPUT
@given(data=st.data())
def test_registering_at_a_stage_the_kind_cannot_hold_is_an_illegal_transition(
    crm: CRM, data: st.DataObject,
) -> None:
    kind = data.draw(cst.kinds())
    stage = data.draw(st.sampled_from([s for s in cst.ALL_STAGES if s not in cst.REGISTRABLE_STAGES[kind]]))
    fields = data.draw(cst.registrations(kind=kind)) | {"stage": stage}
    _assert_refused(crm, lambda: crm.register_party(**fields), IllegalTransition, [])


#: For each command: a party of the scene whose state refuses it, and fields otherwise valid.
REFUSING: dict[str, tuple[str, Callable[[Scene], dict[str, Any]]]] = {
    "engage": ("prospect", lambda s: {"channel": "email"}),
    "qualify": ("suspect", lambda s: {}),
    "disqualify": ("suspect", lambda s: {"reason": "no budget"}),
    "reopen": ("lead", lambda s: {}),
    "convert": ("lead", lambda s: {}),
    "assign": ("disqualified", lambda s: {"owner": "rep-ada"}),
    "link": ("suspect", lambda s: {"organization_id": s.target}),
    "set_aside": ("set_aside", lambda s: {"reason": "stale"}),
    "restore": ("suspect", lambda s: {}),
}


@pytest.mark.parametrize("command", sorted(REFUSING))
def test_a_command_the_party_state_refuses_is_an_illegal_transition_and_records_nothing(
    crm: CRM, scene: Scene, command: str,
) -> None:
    target_name, valid = REFUSING[command]
    party_id = getattr(scene, target_name)
    method = getattr(crm, command)
    _assert_refused(crm, lambda: method(party_id, actor="tester", **valid(scene)), IllegalTransition,
                    list(vars(scene).values()))


@BAD_INPUT
@given(
    good=st.lists(cst.registrations(), max_size=3),
    bad=st.one_of(
        st.tuples(cst.registrations(), st.one_of(
            _spoil("name", cst.invalid_names() | st.just(MISSING)),
            _spoil("kind", st.sampled_from(("company", None, MISSING))),
            _spoil("stage", st.sampled_from(("hot", "disqualified", None))),
            _spoil("owner", _bad_text(200)),
            _spoil("profile", _bad_changes.filter(lambda v: v != {})),
            _common_spoilers(party_command=False),
        )).map(lambda pair: _apply(pair[0], pair[1][0], pair[1][1])),
        st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
    ),
    index=st.integers(0, 3),
)
def test_bulk_registering_with_one_bad_row_raises_invalid_input_and_records_nothing(
    crm: CRM, good: list[dict[str, Any]], bad: Any, index: int,
) -> None:
    rows: list[Any] = list(good)
    rows.insert(min(index, len(rows)), bad)
    _assert_refused(crm, lambda: crm.bulk_register(rows), InvalidInput, [])


@BAD_INPUT
@given(rows=st.lists(cst.registrations(), min_size=1, max_size=3), index=st.integers(0, 2),
       wrong=st.sampled_from(("organization_name", "contact_name")), name=cst.names())
def test_bulk_registering_a_counterpart_name_on_the_wrong_kind_is_refused(
    crm: CRM, rows: list[dict[str, Any]], index: int, wrong: str, name: str,
) -> None:
    row = rows[min(index, len(rows) - 1)]
    row["kind"] = "organization" if wrong == "organization_name" else "person"
    row["stage"] = "suspect"
    row.pop("contact_name" if wrong == "organization_name" else "organization_name", None)
    row[wrong] = name
    _assert_refused(crm, lambda: crm.bulk_register(rows), InvalidInput, [])


def test_reading_a_party_by_a_malformed_or_unknown_id_raises_a_typed_error(crm: CRM) -> None:
    with pytest.raises(InvalidInput):
        crm.get_party("not-a-uuid")
    with pytest.raises(PartyNotFound):
        crm.get_party(uuid4())


def test_bulk_registering_a_trait_integer_beyond_64_bits_is_refused_or_stored(crm: CRM) -> None:
    row = {"kind": "person", "name": "Ada", "actor": "t", "profile": {"score": 2**64}}
    position = crm.position
    try:
        ids = crm.bulk_register([row])
    except CrmError:
        assert crm.position == position
    else:
        assert crm.get_party(ids[0]).profile == {"score": 2**64}


# ------------------------------------------------------------------------------------------ edges

_EDGE_OF_TIME = (
    datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),  # 0000-12-31T23:30Z: before year 1
    datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1))),  # after year 9999 in UTC
)


@pytest.mark.parametrize("at", _EDGE_OF_TIME, ids=["before-year-1", "after-year-9999"])
def test_registering_at_a_moment_outside_the_utc_calendar_is_invalid_input(crm: CRM, at: datetime) -> None:
    _assert_refused(crm, lambda: crm.register_party(kind="person", name="Ada", actor="t", effective_at=at),
                    InvalidInput, [])


@pytest.mark.parametrize("at", _EDGE_OF_TIME, ids=["before-year-1", "after-year-9999"])
def test_a_command_at_a_moment_outside_the_utc_calendar_is_invalid_input(
    crm: CRM, scene: Scene, at: datetime,
) -> None:
    _assert_refused(crm, lambda: crm.engage(scene.suspect, channel="email", actor="t", effective_at=at),
                    InvalidInput, [scene.suspect])


@pytest.mark.parametrize("at", _EDGE_OF_TIME, ids=["before-year-1", "after-year-9999"])
def test_bulk_registering_at_a_moment_outside_the_utc_calendar_is_invalid_input(
    crm: CRM, at: datetime,
) -> None:
    row = {"kind": "person", "name": "Ada", "actor": "t", "effective_at": at}
    _assert_refused(crm, lambda: crm.bulk_register([row]), InvalidInput, [])


@pytest.mark.parametrize("field", ["name", "owner"])
def test_a_nul_character_in_a_listed_field_is_invalid_input_and_the_view_still_answers(
    crm: CRM, field: str,
) -> None:
    # PostgreSQL's JSONB cannot hold U+0000: once stored, it broke the parties view for every reader.
    fields = {"kind": "person", "name": "Ada Lovelace", "actor": "t", "owner": "rep-ada"}
    fields[field] = fields[field].replace(" ", "\x00").replace("-", "\x00")
    _assert_refused(crm, lambda: crm.register_party(**fields), InvalidInput, [])
    assert crm.parties() == []
