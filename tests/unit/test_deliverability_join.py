"""The deliverability the party facts join (pure, no database): the rule of ``deliverable_of``, and the
``address_decisions`` fold reading decisions as the ``AddressStatus`` aggregate does (effective-time
order, ties in recording order)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crmcore.aggregates.engagement import AddressStatus
from crmcore.projections.addresses import AddressDecisionsView, decision_in_force, suppressed_by_key
from crmcore.projections.base import fold_records
from crmcore.projections.facts import deliverable_of, facts_of, primary_address_keys
from crmcore.projections.records import StoredRecord, record_of

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def facts_row(emails: list[str], phones: list[str], email_ok: bool = True, phone_ok: bool = True) -> Any:
    return {"party_id": "p", "merged_into": None, "emails": emails, "phones": phones,
            "ledger_deliverable": {"email": email_ok, "newsletter": email_ok, "phone": phone_ok,
                                   "sms": phone_ok}}


def test_without_a_primary_address_a_channel_is_not_deliverable_whatever_is_decided() -> None:
    assert deliverable_of(facts_row([], []), lambda key: False) == {
        "email": False, "newsletter": False, "phone": False, "sms": False}


def test_with_no_decision_in_force_the_party_ledger_decides() -> None:
    row = facts_row(["Ada@Example.com"], ["+390612345678"], email_ok=False)
    assert deliverable_of(row, lambda key: None) == {
        "email": False, "newsletter": False, "phone": True, "sms": True}


def test_a_suppression_in_force_makes_a_ledger_deliverable_address_undeliverable() -> None:
    row = facts_row(["Ada@Example.com"], ["+390612345678"])
    decided = {"ada@example.com": True}
    assert deliverable_of(row, decided.get) == {
        "email": False, "newsletter": False, "phone": True, "sms": True}


def test_a_reinstatement_in_force_wins_over_the_party_ledger() -> None:
    row = facts_row(["ada@example.com"], ["+390612345678"], email_ok=False, phone_ok=False)
    decided = {"ada@example.com": False, "+390612345678": False}
    assert all(deliverable_of(row, decided.get).values())


def test_only_the_primary_address_is_read() -> None:
    row = facts_row(["ada@example.com", "old@example.com"], [])
    assert deliverable_of(row, {"old@example.com": True}.get)["email"] is True
    assert primary_address_keys(row) == ["ada@example.com"]


def test_the_join_adds_deliverable_to_each_live_party() -> None:
    merged = {**facts_row(["bob@example.com"], []), "party_id": "q", "merged_into": "p"}
    joined = facts_of([facts_row(["ada@example.com"], []), merged], [], {"ada@example.com": True})
    assert list(joined) == ["p"]
    assert joined["p"]["deliverable"]["email"] is False
    assert joined["p"]["open_opportunities"] == 0


def decision(suppressed: bool, days: int, position: int, key: str = "ada@example.com") -> StoredRecord:
    cls = AddressStatus.Suppressed if suppressed else AddressStatus.Reinstated
    event = cls(originator_id=AddressStatus.create_id(key), originator_version=position + 1,
                timestamp=T0 + timedelta(days=100 + position), address_key=key, rule="hard_bounce",
                reason="r", policy={"name": "bounce", "version": 2}, evidence=[], actor="policy:bounce",
                effective_at=T0 + timedelta(days=days))
    return record_of(event, position)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=1, max_size=8))
def test_the_decision_in_force_is_the_aggregates(decisions: list[tuple[bool, int]]) -> None:
    records = [decision(s, d, n + 1) for n, (s, d) in enumerate(decisions)]
    [row] = fold_records(AddressDecisionsView(), records).values()
    status: Any = AddressStatus.__new__(AddressStatus)
    status.decisions = [{"suppressed": s, "effective_at": T0 + timedelta(days=d)} for s, d in decisions]
    assert row["suppressed"] is status.suppressed_at()
    assert decision_in_force(row["decisions"]) is status.suppressed_at()
    assert suppressed_by_key([row]) == {"ada@example.com": status.suppressed_at()}


def test_a_late_decision_for_an_earlier_moment_does_not_change_the_one_in_force() -> None:
    records = [decision(True, 5, 1), decision(False, 2, 2)]
    [row] = fold_records(AddressDecisionsView(), records).values()
    assert row["suppressed"] is True
    assert [d[2] for d in row["decisions"]] == [False, True]  # effective-time order
