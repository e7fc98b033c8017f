"""The quarterly clean-up through the CRM on every store: the dry run, the real run and what it records,
reverting it party by party, reading runs back, the what-if over history, and bad input refused."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from crmcore import (
    CRM,
    CleanUpNotFound,
    CleanUpPolicy,
    HygienePolicy,
    IllegalTransition,
    InvalidInput,
    StaleAction,
)
from crmcore.aggregates.cleanup import CleanUp
from crmcore.aggregates.party import Party
from crmcore.models import CleanUpRun, HygieneCounts
from crmcore.testing.campaigns import engagement_report, running_campaign
from crmcore.values import PartyKind, Stage

from .test_crm_hygiene import DAY, NOW, POLICY, T0, person, world


def comparable(counts: HygieneCounts) -> dict[str, Any]:
    """The counts a clean-up changes or reads (the moment and the now-only sections left out)."""
    return counts.model_dump(exclude={"at", "quarter", "rule_breaks", "duplicates"})


def plan(run: CleanUpRun) -> list[tuple[UUID, str, tuple[str, ...]]]:
    return [(a.party_id, a.kind, tuple(a.detail)) for a in run.actions]


def test_a_dry_run_shows_the_plan_and_records_nothing(crm: CRM) -> None:
    p = world(crm)
    before = crm.position
    dry = crm.clean_up(actor="ops", hygiene_policy=POLICY, dry_run=True)
    assert crm.position == before
    assert dry.run_id is None
    assert dry.dry_run
    # Stale is moved to the newsletter list; Ledger's address, undeliverable by its own ledger with no
    # decision, is suppressed; Nobody (owned by bob) gets a completion task. Acme is incomplete but has no
    # owner and negotiates; W1 negotiates; Aside is set aside already.
    assert plan(dry) == sorted([
        (p["stale"], "newsletter", ()),
        (p["ledger"], "suppress_address", ("ledger@example.com",)),
        (p["nobody"], "completion_task", ("emails or phones",)),
    ], key=lambda a: str(a[0]))
    assert all(a.task_id is None for a in dry.actions)
    assert comparable(dry.counts_before) == comparable(crm.hygiene_report(policy=POLICY).counts)
    assert (dry.counts_before.stale, dry.counts_after.stale) == (1, 0)
    assert (dry.counts_before.set_aside, dry.counts_after.set_aside) == (1, 2)
    assert dry.counts_after.bounced == dry.counts_before.bounced  # from the ledger to a decision
    assert dry.policy == CleanUpPolicy().recorded()
    assert crm.clean_up_runs() == []


def test_a_real_run_records_one_event_and_the_actions_in_one_transaction(crm: CRM) -> None:
    p = world(crm)
    dry = crm.clean_up(actor="ops", hygiene_policy=POLICY, dry_run=True)
    run = crm.clean_up(actor="ops", hygiene_policy=POLICY)
    assert run.run_id is not None
    assert not run.dry_run
    assert plan(run) == plan(dry)
    assert comparable(run.counts_before) == comparable(dry.counts_before)
    assert comparable(run.counts_after) == comparable(crm.hygiene_report(at=run.at, policy=POLICY).counts)
    (ran,) = [e for e in crm._app.events.get(run.run_id)]
    assert isinstance(ran, CleanUp.Ran)
    assert ran.policy["name"] == "clean_up"
    assert ran.policy["version"] == 1
    assert ran.hygiene_policy["min_samples"] == 2

    stale = crm.get_party(p["stale"])
    assert stale.set_aside
    assert stale.set_aside_reason == f"moved to the generic newsletter list (clean-up {run.run_id})"
    status = crm.address_status("ledger@example.com")
    assert status.suppressed
    decision = status.decisions[-1]
    assert (decision.rule, decision.evidence) == ("clean_up", [f"clean_up:{run.run_id}"])
    assert status.decisions[-1].effective_at == run.at
    (task_step,) = [a for a in run.actions if a.kind == "completion_task"]
    task = crm.get_task(task_step.task_id)
    assert (task.kind, task.assignees, task.party_id, task.status) == ("documentation", ["bob"], p["nobody"],
                                                                        "open")
    assert task.deadline == (run.at + 90 * DAY).date()
    assert "emails or phones" in task.subject
    assert crm.clean_up_run(run.run_id) == run
    assert crm.clean_up_runs() == [run]
    # the newsletter list keeps its consent: the party is out of sales work, still mailed
    assert stale.consent == crm.get_party(p["stale"], version=stale.version - 1).consent
    again = crm.clean_up(actor="ops", hygiene_policy=POLICY, dry_run=True)
    assert [a for a in plan(again) if a[1] != "completion_task"] == []  # done; the record is still empty


def test_parties_in_an_open_negotiation_are_left_alone_unless_the_policy_says_so(crm: CRM) -> None:
    p = world(crm)
    lenient = HygienePolicy(min_samples=2, stale_with_open_opportunity=True, fallback_days=10)
    default = crm.clean_up(actor="ops", hygiene_policy=lenient, dry_run=True)
    stale = {s.party_id for s in crm.hygiene_report(policy=lenient).stale}
    assert {p["w1"], p["acme"]} <= stale  # the report calls them stale ...
    assert not {p["w1"], p["acme"]} & set(default.parties)  # ... the clean-up leaves them alone
    told = crm.clean_up(actor="ops", hygiene_policy=lenient, dry_run=True,
                        policy=CleanUpPolicy(include_open_opportunities=True,
                                             stale_action=StaleAction.SET_ASIDE))
    assert {(a.party_id, a.kind) for a in told.actions} >= {(p["w1"], "set_aside"), (p["acme"], "set_aside")}


def test_a_dry_run_as_of_a_past_moment_plans_from_the_report_then(crm: CRM) -> None:
    p = world(crm)
    then = NOW - 15 * DAY  # Aside not set aside yet, Twin not merged yet, Stale 45 days in (under 50)
    past = crm.clean_up(actor="ops", hygiene_policy=POLICY, dry_run=True, at=then)
    assert past.at == then
    assert comparable(past.counts_before) == comparable(crm.hygiene_report(at=then, policy=POLICY).counts)
    assert {a.party_id for a in past.actions if a.kind == "newsletter"} == {p["aside"], p["twin"]}
    before = crm.position
    with pytest.raises(InvalidInput, match="dry run"):
        crm.clean_up(actor="ops", hygiene_policy=POLICY, at=then)
    assert crm.position == before


def test_the_policy_settings_change_the_plan(crm: CRM) -> None:
    p = world(crm)
    aside = crm.clean_up(actor="ops", hygiene_policy=POLICY, dry_run=True,
                         policy=CleanUpPolicy(stale_action=StaleAction.SET_ASIDE, suppress_bounced=False,
                                              completion_tasks=False))
    assert plan(aside) == [(p["stale"], "set_aside", ())]
    assert crm.clean_up(actor="ops", hygiene_policy=POLICY, dry_run=True,
                        policy=CleanUpPolicy(stale_action=StaleAction.NONE, suppress_bounced=False,
                                             completion_tasks=False)).actions == []
    run = crm.clean_up(actor="ops", hygiene_policy=POLICY, policy=CleanUpPolicy(
        stale_action=StaleAction.SET_ASIDE, suppress_bounced=False, completion_tasks=False, version=2,
        name="strict"))
    assert crm.get_party(p["stale"]).set_aside_reason == f"stale (clean-up {run.run_id})"
    assert (run.policy["name"], run.policy["version"]) == ("strict", 2)


def test_reverting_puts_back_one_party_then_the_rest(crm: CRM) -> None:
    p = world(crm)
    before = crm.hygiene_report(policy=POLICY)
    before_facts = crm.party_facts()[str(p["ledger"])]["deliverable"]
    run = crm.clean_up(actor="ops", hygiene_policy=POLICY)
    (task_step,) = [a for a in run.actions if a.kind == "completion_task"]

    one = crm.revert_clean_up(run.run_id, party_id=p["stale"], actor="ops", reason="still interested")
    assert list(one.reverted) == [p["stale"]]
    assert [s.kind for s in one.reverted[p["stale"]]] == ["newsletter"]
    restored = crm.get_party(p["stale"])
    assert not restored.set_aside
    assert crm.address_status("ledger@example.com").suppressed  # the other parties untouched
    with pytest.raises(IllegalTransition):
        crm.revert_clean_up(run.run_id, party_id=p["stale"], actor="ops")
    with pytest.raises(IllegalTransition):
        crm.revert_clean_up(run.run_id, party_id=p["reader"], actor="ops")  # not touched by the run

    rest = crm.revert_clean_up(run.run_id, actor="ops")
    assert set(rest.reverted) == {p["stale"], p["ledger"], p["nobody"]}
    # handed back to the bounce policy: its own hard bounce keeps it undeliverable, as before the run
    status = crm.address_status("ledger@example.com")
    assert status.suppressed
    assert status.decisions[-1].rule == "clean_up_reverted"
    assert status.decisions[-1].evidence[0] == f"clean_up:{run.run_id}"
    assert crm.party_facts()[str(p["ledger"])]["deliverable"] == before_facts
    assert crm.get_task(task_step.task_id).status == "cancelled"
    assert comparable(crm.hygiene_report(policy=POLICY).counts) == comparable(before.counts)
    assert crm.clean_up_run(run.run_id) == rest

    position = crm.position
    assert crm.revert_clean_up(run.run_id, actor="ops") == rest  # nothing left: records nothing
    assert crm.position == position


def test_reverting_leaves_alone_what_is_no_longer_the_runs_doing(crm: CRM) -> None:
    p = world(crm)
    run = crm.clean_up(actor="ops", hygiene_policy=POLICY)
    (task_step,) = [a for a in run.actions if a.kind == "completion_task"]
    crm.restore(p["stale"], reason="called back", actor="rep")
    crm.set_aside(p["stale"], reason="on holiday", actor="rep")
    crm.complete_task(task_step.task_id, by="bob", actor="bob")
    back = crm.revert_clean_up(run.run_id, actor="ops")
    assert back.reverted[p["stale"]] == []  # set aside again, by someone else, for another reason
    assert back.reverted[p["nobody"]] == []  # the task was done
    assert [s.kind for s in back.reverted[p["ledger"]]] == ["suppress_address"]
    assert crm.get_party(p["stale"]).set_aside_reason == "on holiday"
    assert crm.get_task(task_step.task_id).status == "completed"


def test_bad_input_is_refused_and_records_nothing(crm: CRM) -> None:
    world(crm)
    before = crm.position
    with pytest.raises(InvalidInput):
        crm.clean_up(actor="ops", policy=HygienePolicy())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        crm.clean_up(actor="ops", hygiene_policy=CleanUpPolicy())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        crm.clean_up(actor=" ")
    with pytest.raises(InvalidInput, match="task kind"):
        crm.clean_up(actor="ops", policy=CleanUpPolicy(task_kind="chores"))
    with pytest.raises(InvalidInput):
        crm.clean_up_what_if(quarters=0)
    with pytest.raises(InvalidInput):
        crm.clean_up_what_if(until=NOW.replace(tzinfo=None))
    with pytest.raises(CleanUpNotFound):
        crm.revert_clean_up(uuid4(), actor="ops")
    with pytest.raises(CleanUpNotFound):
        crm.clean_up_run(crm.get_party(crm.register_party(kind="person", name="x", actor="u")).id)
    assert crm.position == before + 1  # the party just registered, nothing else


def test_a_crm_with_other_task_kinds_names_its_own_in_the_policy(store_url: str) -> None:
    with CRM(store_url, task_kinds=("call", "chores")) as crm:
        p = world(crm)
        run = crm.clean_up(actor="ops", hygiene_policy=POLICY, policy=CleanUpPolicy(task_kind="Chores"))
        (step,) = [a for a in run.actions if a.kind == "completion_task"]
        assert crm.get_task(step.task_id).kind == "chores"
        assert step.party_id == p["nobody"]


def what_if_world(crm: CRM) -> dict[str, UUID]:
    """Two leads measure the lead stay (20 days: threshold 50) and became customers; ``late`` has been a
    suspect since T0, opened a campaign and replied 45 days ago, then bought (a 5,000 EUR deal won 10 days
    ago); ``dup``, a lead since T0, was merged into ``late`` 20 days ago; ``idle`` has been a lead since T0
    and did nothing; ``new`` became a lead 30 days ago."""
    p = {"w1": person(crm, "W1", "lead", T0), "w2": person(crm, "W2", "lead", T0),
         "late": person(crm, "Late", "suspect", T0), "dup": person(crm, "Dup", "lead", T0),
         "idle": person(crm, "Idle", "lead", T0), "new": person(crm, "New", "lead", NOW - 30 * DAY)}
    crm.qualify(p["w1"], actor="u", effective_at=T0 + 10 * DAY)
    crm.qualify(p["w2"], actor="u", effective_at=T0 + 30 * DAY)
    for worked in ("w1", "w2"):  # customers: no longer in an open stage
        crm.convert(p[worked], actor="u", effective_at=T0 + 40 * DAY)
    campaign = running_campaign(newsletter=[p["late"]], at=NOW - 50 * DAY)
    crm._save(campaign)
    crm._save(engagement_report("opened", campaign_id=campaign.id, party_id=p["late"], at=NOW - 45 * DAY))
    crm.engage(p["late"], channel="email", actor="u", effective_at=NOW - 45 * DAY)
    crm.qualify(p["late"], actor="u", effective_at=NOW - 40 * DAY)
    deal = crm.open_opportunity(p["late"], title="Deal", value="5000", currency="EUR",
                                expected_close="2030-01-31", owner="ann", actor="ann",
                                effective_at=NOW - 39 * DAY)
    crm.merge(p["late"], p["dup"], actor="u", reason="same person", effective_at=NOW - 20 * DAY)
    crm.win(deal, actor="ann", effective_at=NOW - 10 * DAY)
    return p


def test_the_what_if_follows_who_would_have_been_excluded_and_what_they_did_after(crm: CRM) -> None:
    p = what_if_world(crm)
    quarters = crm.clean_up_what_if(hygiene_policy=POLICY, quarters=8)
    trend = crm.hygiene_trend(policy=POLICY, quarters=8)
    assert [q.quarter for q in quarters] == [t.quarter for t in trend]
    assert [q.newsletter for q in quarters] == [t.stale for t in trend]  # default: moved, every stale one
    last = quarters[-1]
    assert last.until >= NOW
    by_party = {w.party_id: w for w in last.parties}
    assert set(by_party) == {p["late"], p["dup"], p["idle"]}
    late = by_party[p["late"]]
    assert (late.opened, late.clicked, late.replied, late.opportunity, late.bought) == (
        True, False, True, True, True)
    assert late.won_value == {"EUR": Decimal("5000")}
    assert late.stage == "suspect"
    assert late.action == "newsletter"
    dup = by_party[p["dup"]]
    assert dup.survivor_id == p["late"]
    assert (dup.opened, dup.bought, dup.won_value) == (True, True, {"EUR": Decimal("5000")})
    idle = by_party[p["idle"]]
    assert (idle.opened, idle.replied, idle.opportunity, idle.bought, idle.won_value) == (
        False, False, False, False, {})
    assert (last.newsletter, last.opened, last.clicked, last.replied, last.opportunity, last.bought) == (
        3, 2, 0, 2, 2, 2)
    assert last.won_value == {"EUR": Decimal("10000")}  # late's deal counts for late and for dup
    # each quarter on its own; first_time: the parties no earlier quarter would have set aside
    dropped = [{w.party_id for w in q.parties if w.first} for q in quarters]
    assert [len(d) for d in dropped] == [q.first_time for q in quarters]
    assert set().union(*dropped) == {w.party_id for q in quarters for w in q.parties}
    assert sum(q.first_time for q in quarters) == len(set().union(*dropped))
    assert crm.clean_up_runs() == []


def test_the_what_if_up_to_a_past_moment_reads_only_what_came_before_it(crm: CRM) -> None:
    p = what_if_world(crm)
    until = NOW - 42 * DAY  # after the open and the reply, before the deal
    last = crm.clean_up_what_if(hygiene_policy=POLICY, quarters=2, until=until)[-1]
    late = next(w for w in last.parties if w.party_id == p["late"])
    assert (late.opened, late.replied, late.opportunity, late.bought) == (True, True, False, False)
    aside = crm.clean_up_what_if(hygiene_policy=POLICY, quarters=2, until=until,
                                 policy=CleanUpPolicy(stale_action=StaleAction.SET_ASIDE))[-1]
    assert aside.set_aside == last.newsletter
    assert aside.newsletter == 0
    assert crm.clean_up_what_if(hygiene_policy=POLICY, quarters=2, until=until,
                                policy=CleanUpPolicy(stale_action=StaleAction.NONE))[-1].parties == []


def test_a_run_leaves_the_report_as_its_counts_after_say_with_a_timeline_of_its_own(crm: CRM) -> None:
    world(crm)
    first = crm.clean_up(actor="ops", hygiene_policy=POLICY)
    second = crm.clean_up(actor="ops", hygiene_policy=POLICY, policy=CleanUpPolicy(completion_tasks=False))
    assert second.actions == []
    assert comparable(second.counts_before) == comparable(first.counts_after)
    assert [r.run_id for r in crm.clean_up_runs()] == [first.run_id, second.run_id]
    assert second.at > first.at - timedelta(seconds=1)


def test_an_address_two_parties_hold_is_suppressed_once_and_handed_back_once(crm: CRM) -> None:
    """An import that skipped the duplicate check left two parties with one address (as
    ``crmcore.testing.history`` does); both ledgers say it bounced."""
    twins = []
    for name in ("Pia Neri", "Pia Nerl"):
        party = Party.register(kind=PartyKind.PERSON, stage=Stage.CUSTOMER, name=name, actor="import",
                               owner="bob", effective_at=T0, identity={"emails": ["pia@example.com"]})
        party.record_delivery(address="pia@example.com", outcome="hard_bounce", actor="mailer",
                              effective_at=NOW - 5 * DAY)
        crm._save(party)
        twins.append(party.id)
    run = crm.clean_up(actor="ops", hygiene_policy=POLICY)
    assert [(a.party_id, a.kind) for a in run.actions] == sorted(
        ((p, "suppress_address") for p in twins), key=lambda a: str(a[0]))
    status = crm.address_status("pia@example.com")
    assert [d.rule for d in status.decisions] == ["clean_up"]
    back = crm.revert_clean_up(run.run_id, actor="ops")
    undone = {p: [s.kind for s in steps] for p, steps in back.reverted.items()}
    assert sorted(undone.values()) == [[], ["suppress_address"]]  # the first revert hands it back for both
    rules = [d.rule for d in crm.address_status("pia@example.com").decisions]
    assert rules == ["clean_up", "clean_up_reverted"]
