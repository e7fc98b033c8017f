"""Checking the ``party_facts`` view against the parties themselves (used as a state-machine invariant)."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, cast
from uuid import UUID

from crmcore.aggregates.party import Party
from crmcore.application import CRM
from crmcore.projections.asof import utc_text
from crmcore.projections.facts import PartyFactsView
from crmcore.projections.records import native
from crmcore.projections.runner import paused_gc
from crmcore.values import utc_now

__all__ = ["assert_facts_agree"]


def assert_facts_agree(crm: CRM) -> None:
    """Every party's facts row, read now and rebuilt from zero, says what loading the party says.

    Checked: kind, stage, owner, name, organization, VAT number, custom fields, profile, consent per
    channel, primary addresses, last interaction, and that exactly the parties not merged away are listed.
    The stays (``stages``) end in the party's stage, since ``stage_since``, in time order, never twice the
    same stage in a row; for a party no merge or unmerge touched they are exactly the stage changes its own
    events make.
    """
    facts = crm.party_facts()
    rows = {r["party_id"]: r for r in crm.view_rows(PartyFactsView.name)}
    view = crm._runner.view(PartyFactsView.name)
    with paused_gc():
        rebuilt = crm._runner.fold_as_of(view.name, utc_now() + timedelta(days=1))
    assert rebuilt == rows, "party_facts read incrementally differs from a fold from zero"
    for party_id, row in rows.items():
        party = crm.get_party(party_id)
        merged = party.merged_into is not None
        assert (row["merged_into"] is not None) == merged, f"merged_into of {party_id}"
        assert (party_id in facts) != merged, f"{party_id} listed in facts while merged (or missing)"
        if merged:
            continue
        expected: dict[str, Any] = {
            "kind": party.kind.value, "stage": party.stage.value, "owner": party.owner, "name": party.name,
            "organization_id": None if party.organization_id is None else str(party.organization_id),
            "fields": _native(party.custom_fields), "profile": _native(party.profile),
            "consent": {c.value: s.value for c, s in party.consent.items()},
            "emails": list(party.emails), "phones": list(party.phones), "vat_number": party.vat_number,
            "last_interaction_at": None if party.last_interaction_at is None
            else utc_text(party.last_interaction_at),
        }
        actual = {k: row[k] for k in expected}
        assert actual == expected, f"facts of {party_id}: {actual} != {expected}"
        _assert_stays(crm, party_id, row)


#: The stage each lifecycle event moves a party to (None: the stage it names).
_MOVES: dict[type[Any], str | None] = {
    Party.Registered: None, Party.Qualified: None, Party.Engaged: "lead", Party.Reopened: "lead",
    Party.Disqualified: "disqualified", Party.Converted: "customer",
}


def _assert_stays(crm: CRM, party_id: str, row: dict[str, Any]) -> None:
    stays = row["stages"]
    assert stays, f"no stays for {party_id}"
    assert stays[-1][0] == row["stage"], f"stays of {party_id} end elsewhere: {stays}"
    assert _moment(stays[-1][1]) == _moment(row["stage_since"]), f"stays of {party_id}: {stays}"
    assert all(a[0] != b[0] and _moment(a[1]) <= _moment(b[1]) for a, b in pairwise(stays)), stays
    events = crm._events_of(UUID(party_id))
    if any(isinstance(e, Party.Merged | Party.Unmerged) for e in events):
        return
    expected: list[list[str]] = []
    for event in events:
        if type(event) in _MOVES:
            stage = _MOVES[type(event)] or str(cast(Any, event).stage)
            if not expected or expected[-1][0] != stage:
                expected.append([stage, utc_text(cast(Any, event).effective_at)])
    assert stays == expected, f"stays of {party_id}: {stays} != {expected}"


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _native(values: dict[str, Any]) -> dict[str, Any]:
    return {k: native(v) for k, v in values.items()}
