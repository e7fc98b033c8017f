"""Splitting a telemarketing call list among operators, and keeping it balanced as operators come and go.

Pure. An entry of the call list is *open* until a call with a final outcome (reached, wrong number,
interested, not interested) closes it; ``no_answer`` and ``call_back`` leave it open. Only open entries are
ever moved: a closed entry stays with whoever called it. After :func:`rebalance`, every open entry belongs
to one of the operators and their open counts differ by at most one, with as few moves as possible: an
operator keeps its own entries up to its share, entries of operators who left (and entries nobody has yet)
go to those below their share, and the most loaded operators give up only their surplus.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

__all__ = ["Move", "rebalance"]

#: ``(party_id, from_operator, to_operator)``; ``from_operator`` is ``""`` for an entry nobody had.
Move = tuple[str, str, str]


def rebalance(
    assigned: Mapping[str, str],
    open_entries: Iterable[str],
    operators: Sequence[str],
) -> list[Move]:
    """The moves that balance ``open_entries`` among ``operators``, given who has which entry now.

    ``assigned`` maps party ids to their current operator (entries absent from it are unassigned). With no
    operators, nothing moves. Deterministic: entries are taken in party-id order, operators in the order
    given.
    """
    if not operators:
        return []
    staff = list(dict.fromkeys(operators))
    present = set(staff)
    holding: dict[str, list[str]] = {op: [] for op in staff}
    pool: list[tuple[str, str]] = []
    for party in sorted(set(open_entries)):
        owner = assigned.get(party, "")
        if owner in present:
            holding[owner].append(party)
        else:
            pool.append((party, owner))
    total = sum(len(v) for v in holding.values()) + len(pool)
    share, extra = divmod(total, len(staff))
    # The most loaded keep the larger shares: fewest moves.
    by_load = sorted(staff, key=lambda op: (-len(holding[op]), staff.index(op)))
    target = {op: share + (1 if rank < extra else 0) for rank, op in enumerate(by_load)}
    for op in staff:
        surplus = len(holding[op]) - target[op]
        if surplus > 0:
            pool.extend((party, op) for party in holding[op][-surplus:])
            holding[op] = holding[op][:-surplus]
    pool.sort()
    moves: list[Move] = []
    receivers = iter([op for op in staff for _ in range(target[op] - len(holding[op]))])
    for (party, owner), to in zip(pool, receivers, strict=True):
        moves.append((party, owner, to))
    return moves
