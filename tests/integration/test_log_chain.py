"""The tamper-evident chain on every store (design 07 § 2): an untouched log verifies; one byte altered, an
event removed, a chain row removed or edited, two events swapped are each detected and located; an anchor
catches events removed from the end and a recomputed chain; every write path is chained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from crmcore import CRM, InvalidInput, LogHead, StoreSettings, create_audit_key, parse_store_url
from crmcore.testing.history import load_history, simulate_history
from crmcore.testing.tamper import Tamper

NOW = datetime.now(UTC).replace(microsecond=0)


def some_history(crm: CRM) -> None:
    """A few dozen events of every kind of aggregate: parties, a merge, consent, an opportunity, a task."""
    ann = crm.register_party(kind="person", name="Ann", stage="lead", actor="u", emails=["ann@example.com"])
    bea = crm.register_party(kind="person", name="Bea", stage="lead", actor="u")
    crm.qualify(ann, actor="u")
    crm.subscribe_to(ann, channel="newsletter", source="form", lawful_basis="consent", actor="web")
    deal = crm.open_opportunity(ann, title="Deal", value="1000", currency="EUR", expected_close="2030-01-31",
                                owner="ann", actor="ann")
    crm.win(deal, actor="ann")
    crm.plan_task(kind="call", subject="Call", assignees=["ann"], actor="ann", party_id=ann,
                  deadline="2030-01-31")
    crm.merge(ann, bea, actor="u", reason="same")
    crm.bulk_register([{"kind": "person", "name": f"P{i}", "actor": "import"} for i in range(30)])


@pytest.fixture
def chained(crm: CRM) -> tuple[CRM, Tamper]:
    some_history(crm)
    return crm, Tamper(crm)


def kinds(crm: CRM) -> list[tuple[str, int]]:
    return [(p.kind, p.position) for p in crm.verify_log().problems]


def test_an_untouched_log_verifies(chained: tuple[CRM, Tamper]) -> None:
    crm, _ = chained
    result = crm.verify_log()
    assert result.ok
    assert result.problems == []
    assert result.events == result.chained == crm.position
    assert result.head == crm.log_head()
    assert result.head.position == crm.position
    assert crm.verify_log(anchor=crm.log_head()).ok


def test_one_byte_of_one_event_altered_is_detected_and_located(chained: tuple[CRM, Tamper]) -> None:
    crm, tamper = chained
    target = crm.position // 2
    tamper.flip_byte(target, 10)
    result = crm.verify_log()
    assert not result.ok
    (problem,) = result.problems
    assert (problem.kind, problem.position) == ("altered", target)
    event = tamper.events_after(target - 1)[0]
    assert (problem.originator_id.hex if problem.originator_id else None, problem.version) == (
        UUID(str(event[1])).hex, event[2])


def test_an_altered_topic_or_version_is_detected(chained: tuple[CRM, Tamper]) -> None:
    crm, tamper = chained
    tamper.set_topic(3, "crmcore.aggregates.party:Party.Disqualified")
    tamper.set_version(5, 999)
    assert kinds(crm) == [("altered", 3), ("altered", 5)]


def test_a_removed_event_is_located(chained: tuple[CRM, Tamper]) -> None:
    crm, tamper = chained
    if tamper.memory:
        pytest.skip("a memory store's positions are list indexes: an event cannot be removed in place")
    tamper.delete_event(4)
    assert kinds(crm) == [("removed", 4)]


def test_a_removed_event_with_its_chain_row_is_located(chained: tuple[CRM, Tamper]) -> None:
    crm, tamper = chained
    if tamper.memory:
        pytest.skip("a memory store's positions are list indexes: an event cannot be removed in place")
    tamper.delete_event(6)
    tamper.delete_chain_row(6)
    assert kinds(crm) == [("removed", 6)]


def test_a_chain_row_removed_or_edited_is_located(chained: tuple[CRM, Tamper]) -> None:
    crm, tamper = chained
    if not tamper.memory:
        tamper.delete_chain_row(7)
    tamper.set_link(9, bytes(32))
    found = crm.verify_log().problems
    assert [(p.kind, p.position) for p in found] == (
        [("altered", 9)] if tamper.memory else [("unchained", 7), ("altered", 9)])
    assert "chain row's link" in found[-1].detail  # the event itself is as written


def test_two_events_swapped_are_both_detected(chained: tuple[CRM, Tamper]) -> None:
    crm, tamper = chained
    first, second = tamper.state(10), tamper.state(11)
    tamper.set_state(10, second)
    tamper.set_state(11, first)
    assert kinds(crm) == [("altered", 10), ("altered", 11)]


def test_an_anchor_catches_events_removed_from_the_end(chained: tuple[CRM, Tamper]) -> None:
    crm, tamper = chained
    if tamper.memory:
        pytest.skip("a memory store's events cannot be removed")
    anchor = crm.log_head()
    last = crm.position
    tamper.delete_event(last)
    tamper.delete_chain_row(last)
    assert crm.verify_log().ok  # without the anchor the shorter log is consistent
    result = crm.verify_log(anchor=anchor)
    assert [(p.kind, p.position) for p in result.problems] == [("head_mismatch", last)]


def test_a_chain_recomputed_without_the_audit_key_is_caught(store_url: str) -> None:
    keyed = parse_store_url(store_url, audit_key=create_audit_key())
    with CRM(keyed) as crm:
        some_history(crm)
        tamper = Tamper(crm)
        tamper.flip_byte(8, 12)
        tamper.rechain(b"")  # the attacker does not have the key
        problems = crm.verify_log().problems
        assert problems
        assert all(p.kind == "altered" for p in problems)


def test_without_an_audit_key_a_recomputed_chain_is_caught_by_the_anchor(chained: tuple[CRM, Tamper]) -> None:
    crm, tamper = chained
    anchor = crm.log_head()
    tamper.flip_byte(8, 12)
    tamper.rechain(b"")  # the chain has no key: anyone can recompute it
    assert crm.verify_log().ok
    result = crm.verify_log(anchor=anchor)
    assert [p.kind for p in result.problems] == ["head_mismatch"]


def test_every_write_path_is_chained(crm: CRM) -> None:
    start = NOW - timedelta(days=800)
    history = simulate_history(parties=30, seed=3, start=start)
    load_history(crm, history)  # straight inserts through the recorder
    crm.run_policies()
    crm.bulk_register([{"kind": "person", "name": f"B{i}", "actor": "import"} for i in range(20)])
    result = crm.verify_log()
    assert result.ok
    assert result.chained == crm.position


def test_a_log_written_before_the_chain_is_chained_when_next_opened(store_url: str) -> None:
    if store_url.startswith("memory"):
        pytest.skip("a memory store lives in one CRM")
    url = store_url
    with CRM(url) as crm:
        some_history(crm)
        Tamper(crm).drop_chain()
        assert [p.kind for p in crm.verify_log().problems] == ["unchained"] * crm.position
    with CRM(url) as crm:  # opened again: the chain adopts the log
        assert crm.verify_log().ok
        crm.register_party(kind="person", name="After", actor="u")
        assert crm.verify_log().chained == crm.position


def test_concurrent_writers_keep_one_chain(store_url: str) -> None:
    if store_url.startswith("memory"):
        pytest.skip("a memory store lives in one CRM")
    import threading

    def write(name: str) -> None:
        with CRM(store_url) as other:
            for i in range(15):
                other.register_party(kind="person", name=f"{name}{i}", actor=name)

    threads = [threading.Thread(target=write, args=(n,)) for n in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with CRM(store_url) as crm:
        result = crm.verify_log()
        assert result.ok, result.problems
        assert result.events == crm.position


def test_a_bad_anchor_or_audit_key_is_refused(crm: CRM) -> None:
    with pytest.raises(InvalidInput):
        crm.verify_log(anchor={"position": 1, "link": "00"})  # type: ignore[arg-type]
    settings: Any = StoreSettings(kind="memory", audit_key="not base64!")
    from crmcore.exceptions import StoreConfigurationError

    with pytest.raises(StoreConfigurationError):
        CRM(settings)
    assert LogHead(position=0, link=bytes(32).hex()) == CRM("memory:").log_head()


def test_an_event_altered_after_a_deleted_chain_row_is_still_caught(chained: tuple[CRM, Tamper]) -> None:
    crm, tamper = chained
    if tamper.memory:
        pytest.skip("a memory store's chain rows are not deleted")
    tamper.delete_chain_row(7)
    tamper.flip_byte(8, 15)
    assert kinds(crm) == [("unchained", 7), ("altered", 8)]


def test_the_command_line_prints_the_head_and_verifies(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    key = create_audit_key()
    with CRM(parse_store_url(url, audit_key=key)) as crm:
        some_history(crm)
    env = {**os.environ, "CRMCORE_AUDIT_KEY": key}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "crmcore", *args], env=env, capture_output=True,
                              text=True, check=False, timeout=120)

    head = run("head", url)
    assert head.returncode == 0, head.stderr
    anchor = tmp_path / "head.json"
    anchor.write_text(head.stdout)
    assert json.loads(head.stdout)["position"] > 0
    good = run("verify", url, "--anchor", str(anchor))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "the log is as it was written" in good.stdout
    with CRM(parse_store_url(url, audit_key=key)) as crm:
        Tamper(crm).flip_byte(5, 3)
    bad = run("verify", url, "--json")
    assert bad.returncode == 1
    assert [(p["kind"], p["position"]) for p in json.loads(bad.stdout)["problems"]] == [("altered", 5)]
    wrong_key = subprocess.run([sys.executable, "-m", "crmcore", "verify", url], capture_output=True,
                               text=True, check=False, timeout=120,
                               env={**os.environ, "CRMCORE_AUDIT_KEY": create_audit_key()})
    assert wrong_key.returncode == 1  # another key: nothing verifies


def test_an_altered_snapshot_is_found_by_replaying_its_events(crm: CRM) -> None:
    busy = crm.register_party(kind="person", name="Busy", actor="u")
    for turn in range(110):  # past the snapshot interval (100)
        crm.assign(busy, owner=f"rep-{turn % 3}", actor="u")
    tamper = Tamper(crm)
    (snapshot,) = tamper.snapshots()
    result = crm.verify_log()
    assert result.ok
    assert result.snapshots == 1
    originator, version, state = snapshot
    assert b"Busy" in state
    tamper.set_snapshot_state(originator, version, state.replace(b"Busy", b"Bosy"))
    found = crm.verify_log().problems
    assert [(p.kind, p.originator_id, p.version) for p in found] == [("snapshot", busy, 100)]
    assert crm.verify_log(snapshots=False).ok  # the log itself is untouched
