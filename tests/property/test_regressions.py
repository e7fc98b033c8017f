"""Failures the lifecycle state machine found and shrank, pinned as plain step-by-step tests.

Each test replays a shrunk sequence of machine steps on every store, checking the invariants after each
step as the machine does. Some were found by deliberately breaking the code (to prove the machine
catches that kind of bug), one was a live bug, fixed since.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from crmcore import Channel, PartyKind
from crmcore.testing import PartyLifecycleMachine


@pytest.fixture
def machine(store_url: str) -> Iterator[PartyLifecycleMachine]:
    """The lifecycle machine on a fresh store of each kind, its invariants checked once at the start."""
    state = type("Machine", (PartyLifecycleMachine,), {"store_url": store_url})()
    try:
        check(state)
        yield state
    finally:
        state.teardown()


def check(state: PartyLifecycleMachine) -> None:
    """What the machine checks after every step."""
    state.parties_agree_with_the_model_and_their_history()
    state.parties_view_agrees_with_a_fold_from_zero()


def step(state: PartyLifecycleMachine, result: Any) -> Any:
    """A step's result (unwrapping ``multiple``), after checking the invariants."""
    check(state)
    values = list(result) if hasattr(result, "__iter__") else [result]
    return values[0] if len(values) == 1 else values


def person(stage: str, **fields: Any) -> dict[str, Any]:
    return {"kind": PartyKind.PERSON, "stage": stage, "name": "Ada Lovelace", "actor": "alice", **fields}


def test_a_disqualified_party_past_a_snapshot_still_cannot_be_assigned(
    machine: PartyLifecycleMachine,
) -> None:
    # Found with the snapshot no longer turning the stored stage back into a Stage: after 100 events
    # the party's stage was the string "disqualified", which `stage is Stage.DISQUALIFIED` missed, and
    # assigning the disqualified party was accepted.
    prospect = step(machine, machine.register_prospect_or_target(fields=person("prospect")))
    step(machine, machine.disqualify_prospect_or_target(party=prospect, reason="no budget"))
    step(machine, machine.update_in_bulk_past_a_snapshot(party=prospect, beyond=0))
    step(machine, machine.assign(party=prospect, owner=None))


def test_a_suspect_past_a_snapshot_still_engages(machine: PartyLifecycleMachine) -> None:
    # The same break, seen from a command the suspect is allowed: engaging it was refused.
    suspect = step(machine, machine.register_suspect(fields=person("suspect")))
    step(machine, machine.update_in_bulk_past_a_snapshot(party=suspect, beyond=1))
    step(machine, machine.engage(party=suspect, channel=Channel.EMAIL, actor="alice"))


def test_converting_a_prospect_makes_it_a_customer(machine: PartyLifecycleMachine) -> None:
    # Found with `Party._converted` no longer setting the stage.
    prospect = step(machine, machine.register_prospect_or_target(fields=person("prospect")))
    step(machine, machine.convert(party=prospect, reference=None))


def test_qualifying_a_suspect_is_refused_and_records_nothing(machine: PartyLifecycleMachine) -> None:
    # Found with `check_can_qualify` letting suspects through.
    suspect = step(machine, machine.register_suspect(fields=person("suspect")))
    step(machine, machine.qualify(lead=suspect, actor="alice"))


def test_changing_a_trait_from_a_flag_to_a_number_is_recorded(machine: PartyLifecycleMachine) -> None:
    # Found by the machine with a rule whose profile changes may switch a trait's value type.
    suspect = step(machine, machine.register_suspect(fields=person("suspect")))
    step(machine, machine.update_profile(party=suspect, changes={"score": True}))
    step(machine, machine.update_profile(party=suspect, changes={"score": 1}))
