"""Identity values: any input is read or refused by name; values survive JSON; keys are stable."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from stdnum import luhn

from crmcore.exceptions import InvalidInput
from crmcore.identity import (
    COUNTRY_CODES,
    BirthDate,
    EmailAddress,
    OrganizationName,
    PersonName,
    PhoneNumber,
    PostalAddress,
    VatNumber,
    WebLink,
    parse_identity,
)
from crmcore.values import utc_now

_TEXT_MODELS = [EmailAddress, PhoneNumber, OrganizationName, BirthDate, WebLink, VatNumber]
_ALL_MODELS = [*_TEXT_MODELS, PersonName, PostalAddress]

_names = st.text(min_size=1, max_size=40).filter(lambda s: s.strip())
_emails = st.emails()
_phones = st.sampled_from(["+39 06 1234 5678", "333 123 4567", "+44 20 7946 0018", "+1 650 253 0000"])
_links = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https", "HTTPS"]),
    st.from_regex(r"[A-Za-z0-9]{1,10}\.(it|com|org)", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9/_-]{0,20}", fullmatch=True),
)
_dates = st.dates(min_value=date(1900, 1, 1), max_value=utc_now().date())
_vats = st.sampled_from(
    [f"IT {base}{luhn.calc_check_digit(base)}" for base in ("0111460100", "0244193096")]
    + ["DE136695976", "EL094259216"]
)
_addresses = st.fixed_dictionaries(
    {
        "street": _names,
        "locality": _names,
        "postcode": st.from_regex(r"[0-9]{5}", fullmatch=True),
        "country": st.just("IT"),
    },
    optional={
        "street_number": st.from_regex(r"[0-9]{1,3}[A-Z]?", fullmatch=True),
        "lines": st.lists(_names, max_size=2),
        "province": _names,
    },
)


def _valid_or_refused(model: type[BaseModel], value: Any) -> BaseModel | None:
    try:
        return parse_identity(model, value, field="value")  # type: ignore[type-var]
    except InvalidInput as refused:
        problems = refused.errors
    assert problems
    assert all(e["loc"][0] == "value" for e in problems)
    return None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(_TEXT_MODELS), text=st.text(max_size=60))
def test_any_text_is_either_read_or_refused_with_invalid_input(model: type[BaseModel], text: str) -> None:
    _valid_or_refused(model, text)


@settings(max_examples=200)
@given(
    model=st.sampled_from(_ALL_MODELS),
    data=st.dictionaries(
        st.sampled_from(["given_name", "family_name", "street", "locality", "postcode", "country", "e164"]),
        st.one_of(st.text(max_size=20), st.integers(), st.none()),
    ),
)
def test_any_mapping_is_either_read_or_refused_with_invalid_input(
    model: type[BaseModel], data: dict[str, Any]
) -> None:
    _valid_or_refused(model, data)


_valid_values = st.one_of(
    _emails.map(EmailAddress.parse),
    _phones.map(PhoneNumber.parse),
    st.builds(lambda g, f: _read(PersonName, {"given_name": g, "family_name": f}), _names, _names),
    _names.filter(lambda s: any(c.isalnum() for c in s)).map(lambda s: _read(OrganizationName, s)),
    _dates.map(BirthDate.parse),
    _addresses.map(lambda a: _read(PostalAddress, a)),
    _links.map(WebLink.parse),
    _vats.map(VatNumber.parse),
).filter(lambda v: v is not None)


def _read(model: type[BaseModel], value: Any) -> BaseModel | None:
    return _valid_or_refused(model, value)


@settings(max_examples=300)
@given(value=_valid_values)
def test_a_valid_value_round_trips_through_json_unchanged(value: BaseModel) -> None:
    again = type(value).model_validate(value.model_dump(mode="json"))
    assert again == value
    assert again.model_dump(mode="json") == value.model_dump(mode="json")


@settings(max_examples=300)
@given(value=_valid_values)
def test_reading_a_value_again_gives_the_same_key(value: Any) -> None:
    again = type(value).parse(value.model_dump(mode="json"))
    assert again.key == value.key


@settings(max_examples=300)
@given(text=st.text(min_size=1, max_size=60))
def test_an_organisation_key_is_its_own_key(text: str) -> None:
    name = _read(OrganizationName, text)
    if name is not None:
        assert OrganizationName.parse(name.key).key == name.key  # type: ignore[attr-defined]


@settings(max_examples=200)
@given(given_name=_names, family_name=_names)
def test_a_person_name_read_from_its_display_parts_keeps_its_key(given_name: str, family_name: str) -> None:
    name = _read(PersonName, {"given_name": given_name, "family_name": family_name})
    if name is not None:
        assert isinstance(name, PersonName)
        assert PersonName.parse({"given_name": name.given_name, "family_name": name.family_name}) == name


def test_the_country_list_has_only_two_letter_upper_case_codes() -> None:
    assert all(len(code) == 2 and code.isascii() and code.isupper() for code in COUNTRY_CODES)
