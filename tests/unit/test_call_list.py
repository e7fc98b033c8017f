"""Call list balance: open entries split evenly, only open entries move, and as few as possible."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crmcore.policies.calllist import rebalance

OPERATORS = ["ann", "bob", "cid", "dan", "eve"]


def apply(assigned: dict[str, str], moves: list[tuple[str, str, str]]) -> dict[str, str]:
    after = dict(assigned)
    for party, before, to in moves:
        assert after.get(party, "") == before
        after[party] = to
    return after


def test_first_split_and_an_operator_joining() -> None:
    entries = ["p1", "p2", "p3", "p4", "p5"]
    first = apply({}, rebalance({}, entries, ["ann", "bob"]))
    assert sorted(first.values()) == ["ann", "ann", "ann", "bob", "bob"]
    moves = rebalance(first, entries, ["ann", "bob", "cid"])
    assert len(moves) == 1
    assert moves[0][1] == "ann"
    assert moves[0][2] == "cid"


def test_closed_entries_never_move() -> None:
    assigned = {"p1": "ann", "p2": "ann", "p3": "ann", "p4": "ann"}
    moves = rebalance(assigned, ["p3", "p4"], ["ann", "bob"])
    assert moves == [("p4", "ann", "bob")]


@given(
    st.lists(st.tuples(st.sampled_from(["add", "remove", "close"]), st.integers(0, 40)), max_size=25),
    st.integers(1, 40),
)
def test_any_history_keeps_the_list_balanced_with_fewest_moves(
    steps: list[tuple[str, int]], size: int,
) -> None:
    entries = [f"p{i:02d}" for i in range(size)]
    open_entries, staff = set(entries), ["ann"]
    assigned = apply({}, rebalance({}, open_entries, staff))
    for action, n in steps:
        if action == "add" and len(staff) < len(OPERATORS):
            staff.append(next(op for op in OPERATORS if op not in staff))
        elif action == "remove" and len(staff) > 1:
            staff.remove(staff[n % len(staff)])
        elif action == "close" and open_entries:
            open_entries.discard(sorted(open_entries)[n % len(open_entries)])
        moves = rebalance(assigned, open_entries, staff)
        before = dict(assigned)
        assigned = apply(assigned, moves)
        assert all(party in open_entries for party, _, _ in moves)  # closed entries stay put
        loads = [sum(1 for p in open_entries if assigned.get(p) == op) for op in staff]
        assert sum(loads) == len(open_entries)
        assert max(loads) - min(loads) <= 1
        # fewest moves: every entry an operator had beyond its final share, or nobody valid had, moved
        held = {op: sum(1 for p in open_entries if before.get(p) == op) for op in staff}
        final = dict(zip(staff, loads, strict=True))
        homeless = sum(1 for p in open_entries if before.get(p) not in staff)
        needed = homeless + sum(max(0, held[op] - final[op]) for op in staff)
        assert len(moves) == needed
