"""Any value fed to any field by ``crm.set_fields`` is stored canonical, or refused with nothing stored."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM, FieldRuleViolation, InvalidInput

FIELDS: list[dict[str, Any]] = [
    {"name": "note", "kind": "text", "max_length": 30},
    {"name": "code", "kind": "text", "pattern": r"[A-Z]{2}-[0-9]{3}"},
    {"name": "employees", "kind": "number", "minimum": 0, "maximum": "100000.5"},
    {"name": "founded", "kind": "date", "minimum": "1900-01-01", "maximum": "2030-12-31"},
    {"name": "vip", "kind": "boolean"},
    {"name": "legal_form", "kind": "choice", "choices": ["S.p.A.", "S.r.l.", "S.n.c."],
     "synonyms": {"SPA": "S.p.A.", "società a responsabilità limitata": "S.r.l."}},
    {"name": "markets", "kind": "multi_choice", "choices": ["Italy", "France", "Côte d'Ivoire"]},
    {"name": "attention", "kind": "label",
     "choices": [{"value": "Hot", "colour": "red"}, {"value": "Cold", "colour": "#0000ff"}]},
    {"name": "linkedin", "kind": "web_link"},
]
NAMES = [f["name"] for f in FIELDS]

NEAR_MISSES = st.sampled_from([
    "spa", "S.p.A", "srl", "s.n.c.", "Società a responsabilità limitata", "HOT", " cold ", "italy",
    "cote d ivoire",
    "Srll", "yes", "No", "sì", "1", "0", "1e3", "-0", "1.50", "NaN", "Infinity", "2024-02-29", "2023-02-29",
    "1899-12-31", "AB-123", "ab-123", "https://www.linkedin.com/in/ada", "ftp://x", "linkedin.com/in/ada",
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(), NEAR_MISSES, st.dates().map(str),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
VALUES = st.one_of(st.text(), NEAR_MISSES, JSONISH, st.lists(st.one_of(NEAR_MISSES, st.text()), max_size=4))


def test_any_value_for_any_field_is_stored_canonical_or_refused_with_nothing_stored(crm: CRM) -> None:
    for field in FIELDS:
        crm.define_field(**field, actor="admin")
    catalog = crm.field_catalog()
    party = crm.register_party(kind="organization", name="Acme", actor="u")

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(name=st.sampled_from(NAMES), value=VALUES)
    def check(name: str, value: Any) -> None:
        before = crm.get_party(party)
        try:
            view = crm.set_fields(party, values={name: value}, actor="u")
        except (FieldRuleViolation, InvalidInput):
            after = crm.get_party(party)
            assert (after.version, after.custom_fields) == (before.version, before.custom_fields)
            return
        expected = catalog[name].normalise(value)
        stored = crm.get_party(party)  # read back from the store, not from the command's aggregate
        assert stored == view
        assert stored.custom_fields.get(name) == expected
        assert type(stored.custom_fields.get(name)) is type(expected)
        # The stored value is canonical: its own definition keeps it exactly as it is.
        assert catalog[name].normalise(stored.custom_fields.get(name)) == expected
        changed = before.custom_fields.get(name) != expected
        assert stored.version == before.version + changed
        if expected is not None:
            assert stored.custom_field_versions[name] == catalog.version
            assert crm.field_values(party)[name].definition == catalog[name]

    check()


TRAITS = ["interests", "behaviours", "preferred_channels", "opinions"]


def test_any_value_for_a_defined_trait_is_stored_canonical_or_refused_with_nothing_stored(crm: CRM) -> None:
    catalog = crm.adopt_standard_profile(actor="admin")
    party = crm.register_party(kind="person", name="Ada", actor="u")

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(name=st.sampled_from([*TRAITS, "shoe_size"]), value=VALUES)
    def check(name: str, value: Any) -> None:
        before = crm.get_party(party)
        try:
            crm.update_profile(party, changes={name: value}, actor="u")
        except InvalidInput:
            after = crm.get_party(party)
            assert (after.version, after.profile) == (before.version, before.profile)
            return
        expected = catalog[name].normalise(value)
        stored = crm.get_party(party)
        assert stored.profile.get(name) == expected
        assert catalog[name].normalise(stored.profile.get(name)) == expected

    check()
