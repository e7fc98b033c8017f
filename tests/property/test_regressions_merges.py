"""Shrunk failures of the merge state machine, pinned."""

from __future__ import annotations

from crmcore import CRM


def test_unmerging_an_earlier_loser_leaves_its_emails_out_of_a_later_merge() -> None:
    # Found by the merge machine: merge B into A, then C into A, then unmerge B. The second merge had
    # recorded A's whole e-mail list (B's address included), so replaying A without the first merge
    # brought B's address back to A, and A kept B's claim.
    with CRM("memory:") as crm:
        a = crm.register_party(kind="person", name="A", emails=["a@example.com"], actor="t")
        b = crm.register_party(kind="person", name="B", emails=["b@example.com"], profile={"b": 1}, actor="t")
        c = crm.register_party(kind="person", name="C", emails=["c@example.com"], profile={"c": 1}, actor="t")
        crm.subscribe_to(
            b, channel="email", source="form", lawful_basis="consent", external_id="b1", actor="t"
        )
        crm.merge(a, b, actor="t", reason="dup")
        crm.merge(a, c, actor="t", reason="dup")
        crm.unmerge(b, actor="t", reason="not a dup")
        survivor = crm.get_party(a)
        assert survivor.emails == ["a@example.com", "c@example.com"]
        assert survivor.profile == {"c": 1}
        assert crm.consent_history(a) == []
        assert crm.holder_of(email="b@example.com") == b
        assert [e.external_id for e in crm.consent_history(b)] == ["b1"]
