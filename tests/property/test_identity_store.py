"""Identity values through the store, on every store: valid ones round-trip, anything else is refused."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import (
    CRM,
    CrmError,
    DuplicateParty,
    EmailAddress,
    InvalidInput,
    PhoneNumber,
    PostalAddress,
    VatNumber,
    WebLink,
)
from crmcore.commands import RegisterParty, validate
from crmcore.testing import strategies as cst
from tests.property.test_identity_properties import _dates, _links, _phones, _vats
from tests.property.test_lifecycle_machine import BASE

STORE = settings(
    BASE, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
_unique = itertools.count()

_addresses = st.fixed_dictionaries(
    {
        "street": cst.names(),
        "locality": cst.names(),
        "postcode": st.from_regex(r"[0-9]{5}", fullmatch=True),
        "country": st.just("IT"),
    },
    optional={
        "street_number": st.from_regex(r"[0-9]{1,3}[A-Z]?", fullmatch=True),
        "lines": st.lists(cst.names(), max_size=2),
        "province": cst.names(),
    },
)
_person_identity = st.fixed_dictionaries(
    {"given_name": cst.names(max_size=100), "family_name": cst.names(max_size=100)},
    optional={
        "emails": st.lists(st.emails(), max_size=3),
        "phones": st.lists(_phones, max_size=2),
        "birth_date": _dates,
        "address": _addresses,
        "web_links": st.lists(_links, max_size=2),
    },
)
_organization_identity = st.fixed_dictionaries(
    {"name": cst.names()},
    optional={"vat_number": _vats, "address": _addresses, "web_links": st.lists(_links, max_size=2)},
)
_IDENTITY_FIELDS = (
    "given_name",
    "family_name",
    "emails",
    "phones",
    "birth_date",
    "address",
    "web_links",
    "vat_number",
)


@STORE
@given(kind=st.sampled_from(["person", "organization"]), data=st.data())
def test_any_valid_identity_value_round_trips_through_the_store_unchanged(
    crm: CRM, kind: str, data: st.DataObject
) -> None:
    fields = dict(data.draw(_person_identity if kind == "person" else _organization_identity))
    # Examples share one store and identifiers are claimed: keep each one new.
    if "emails" in fields:
        fields["emails"] = [f"u{next(_unique)}.{e}" for e in fields["emails"]]
    if fields.get("vat_number") and crm.holder_of(vat_number=fields["vat_number"]) is not None:
        del fields["vat_number"]
    if "phones" in fields:
        fields["phones"] = [p for p in fields["phones"] if crm.holder_of(phone=p) is None]
    party_id = crm.register_party(kind=kind, actor="u", **fields)
    stored = crm.get_party(party_id).model_dump(mode="json")
    expected = _read_back(fields)
    for field in _IDENTITY_FIELDS:
        assert stored[field] == expected[field], field


def _read_back(fields: dict[str, Any]) -> dict[str, Any]:
    """What each identity value must read back as, from the identity values themselves."""

    def unique(values: list[str], keys: list[str] | None = None) -> list[str]:
        kept: list[str] = []
        seen: set[str] = set()
        for value, key in zip(values, keys or [v.lower() for v in values], strict=True):
            if key not in seen:
                seen.add(key)
                kept.append(value)
        return kept

    address = fields.get("address")
    links = fields.get("web_links", [])
    return {
        "given_name": cst.normalised(fields["given_name"]) if "given_name" in fields else None,
        "family_name": cst.normalised(fields["family_name"]) if "family_name" in fields else None,
        "emails": unique([EmailAddress.parse(e).address for e in fields.get("emails", [])]),
        "phones": unique([PhoneNumber.parse(p).e164 for p in fields.get("phones", [])]),
        "birth_date": fields["birth_date"].isoformat() if fields.get("birth_date") else None,
        "address": PostalAddress.parse(address).model_dump(mode="json") if address else None,
        # two links to the same host and path are one web link, whatever the scheme (``WebLink.key``)
        "web_links": unique([str(WebLink.parse(w)) for w in links], [WebLink.parse(w).key for w in links]),
        "vat_number": VatNumber.parse(fields["vat_number"]).key if fields.get("vat_number") else None,
    }


_FIELDS = ("emails", "phones", "birth_date", "address", "web_links", "given_name", "family_name")


@STORE
@given(field=st.sampled_from(_FIELDS), text=st.text(max_size=40))
def test_any_string_for_an_identity_field_is_stored_normalised_or_refused_with_nothing_stored(
    crm: CRM, field: str, text: str
) -> None:
    value: Any = [text] if field in ("emails", "phones", "web_links") else text
    if field == "emails":
        value = [f"u{next(_unique)}{text}"]
    fields = {"kind": "person", "name": "Someone", "actor": "u", field: value}
    position = crm.position
    outcome = _attempt(lambda: crm.register_party(**fields))
    if isinstance(outcome, CrmError):
        # refused as bad input naming the problem (or, for a phone an earlier example holds, as a duplicate)
        assert isinstance(outcome, InvalidInput | DuplicateParty)
        assert not isinstance(outcome, InvalidInput) or outcome.errors
        assert crm.position == position, "a refused registration stored something"
        return
    stored = crm.get_party(outcome).model_dump(mode="json")
    command = validate(RegisterParty, fields)
    assert stored[field] == command.stored_identity().get(field)


def _attempt(call: Callable[[], UUID]) -> UUID | CrmError:
    try:
        return call()
    except CrmError as error:
        return error


def test_two_links_differing_only_by_scheme_are_one_web_link(crm: CRM) -> None:
    # Found by the round-trip property: http and https to the same host and path are one link.
    org = crm.register_party(
        kind="organization", name="Zero", web_links=["http://000.it/", "https://000.it/"], actor="u"
    )
    assert crm.get_party(org).web_links == ["http://000.it/"]
