"""The quarterly clean-up over generated CRMs: a dry run records nothing and shows exactly what the real run
then does; the run never touches a party with an open opportunity unless the policy says so; its counts
after are the report's once it is done; reverting it restores every party it touched.

Each example is a seeded two-year history (``crmcore.testing.history``) of a few dozen parties, with some
addresses hard-bounced straight into their party's ledger (no decision recorded: what the clean-up
suppresses), under random clean-up and hygiene policies, on memory or SQLite. Seen failing with the
negotiation guard removed, with a dry run that recorded, with revert not restoring a party, with the counts
after left as before, and with a reverted suppression reinstated regardless of the address's reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crmcore import CRM, CleanUpPolicy, HygienePolicy, StaleAction
from crmcore.models import HygieneCounts
from crmcore.policies.suppression import address_key_of
from crmcore.testing.history import load_history, simulate_history
from crmcore.values import utc_now

START = utc_now().replace(microsecond=0) - timedelta(days=740)

CLEAN_UP_POLICIES = st.builds(
    CleanUpPolicy, stale_action=st.sampled_from(list(StaleAction)), suppress_bounced=st.booleans(),
    completion_tasks=st.booleans(), include_open_opportunities=st.booleans(),
)
HYGIENE_POLICIES = st.builds(
    HygienePolicy, min_samples=st.integers(1, 20), stale_with_open_opportunity=st.booleans(),
    fallback_days=st.integers(10, 120),
)


@contextmanager
def a_crm(store: str) -> Iterator[CRM]:
    with TemporaryDirectory() as tmp:
        url = "memory://" if store == "memory" else f"sqlite:///{Path(tmp) / 'crm.db'}"
        with CRM(url) as crm:
            yield crm


def comparable(counts: HygieneCounts) -> dict[str, Any]:
    return counts.model_dump(exclude={"at", "quarter", "rule_breaks", "duplicates"})


def bounce_into_ledgers(crm: CRM, party_ids: list[UUID], picks: list[int]) -> None:
    """Hard-bounce the first e-mail address of the picked parties straight into their ledgers."""
    for pick in picks:
        party = crm._load(party_ids[pick % len(party_ids)])
        emails = party.identity.get("emails") or []
        if party.merged_into is not None or not emails:
            continue
        party.record_delivery(address=emails[0], outcome="hard_bounce", actor="mailer", raw_code="550")
        crm._save(party)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), parties=st.integers(5, 50),
       picks=st.lists(st.integers(0, 1000), max_size=6), policy=CLEAN_UP_POLICIES, hygiene=HYGIENE_POLICIES,
       store=st.sampled_from(["memory", "sqlite"]))
def test_a_clean_up_does_what_its_dry_run_shows_and_reverting_it_restores_every_party(
    seed: int, parties: int, picks: list[int], policy: CleanUpPolicy, hygiene: HygienePolicy, store: str,
) -> None:
    history = simulate_history(parties=parties, seed=seed, start=START)
    with a_crm(store) as crm:
        load_history(crm, history)
        bounce_into_ledgers(crm, list(history.party_ids), picks)
        facts = crm.party_facts()

        position = crm.position
        dry = crm.clean_up(actor="ops", policy=policy, hygiene_policy=hygiene, dry_run=True)
        assert crm.position == position  # a dry run records nothing
        touched = dry.parties
        before = {p: crm.get_party(p) for p in touched}
        run = crm.clean_up(actor="ops", policy=policy, hygiene_policy=hygiene)
        for kind in sorted({a.kind for a in run.actions}):
            event(f"a run that takes {kind} actions")

        # the run does exactly what the dry run showed
        assert [(a.party_id, a.kind, a.detail) for a in run.actions] == [
            (a.party_id, a.kind, a.detail) for a in dry.actions]
        assert comparable(run.counts_before) == comparable(dry.counts_before)
        assert comparable(run.counts_after) == comparable(
            crm.hygiene_report(at=run.at, policy=hygiene).counts)
        for party in touched:  # never a party in negotiation unless told
            assert policy.include_open_opportunities or not facts[str(party)]["open_opportunities"]
        for action in run.actions:
            if action.kind in ("set_aside", "newsletter"):
                assert crm.get_party(action.party_id).set_aside
            elif action.kind == "suppress_address":
                assert crm.address_status(facts_address(facts, action.party_id, action.detail[0])).suppressed
            else:
                assert action.task_id is not None
                assert crm.get_task(action.task_id).status == "open"

        # reverting restores every party it touched
        crm.revert_clean_up(run.run_id or UUID(int=0), actor="ops")
        after = crm.party_facts()
        for party in touched:
            now = crm.get_party(party)
            then = before[party]
            assert (now.set_aside, now.set_aside_reason) == (then.set_aside, then.set_aside_reason)
            assert after[str(party)]["deliverable"] == facts[str(party)]["deliverable"]
        for action in run.actions:
            if action.task_id is not None:
                assert crm.get_task(action.task_id).status == "cancelled"
        assert comparable(crm.hygiene_report(policy=hygiene).counts) == comparable(run.counts_before)


def facts_address(facts: dict[str, Any], party: UUID, key: str) -> str:
    """The address of ``party`` whose matching key is ``key``."""
    return next(a for a in facts[str(party)]["emails"] if address_key_of(a) == key)
