"""Time-ordered UUIDv7 ids (RFC 9562), one generator for single and bulk registrations.

Ids drawn in this process only ever increase, even many within one millisecond (the 12-bit counter runs
on into the next milliseconds), so parties registered one by one and in bulk sort in the order they were
made. Random UUIDv4 keys would scatter inserts across the events table's primary-key index.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from uuid import UUID, SafeUUID

__all__ = ["new_uuid7", "reserve_ticks", "uuid7s"]

_ID_LOCK = threading.Lock()
_last_tick = 0
_COUNTER_BITS = [counter << 64 for counter in range(4096)]


def reserve_ticks(count: int) -> int:
    """Reserve ``count`` consecutive (milliseconds, 12-bit counter) ticks; returns the first.

    Ticks continue from the last one handed out in this process, so ids only ever increase here, even
    when many are drawn within one millisecond (the counter then runs on into the next milliseconds).
    """
    global _last_tick
    with _ID_LOCK:
        first = max((time.time_ns() // 1_000_000) << 12, _last_tick + 1)
        _last_tick = first + count - 1
    return first


def uuid7s(first_tick: int, count: int) -> tuple[list[UUID], list[str]]:
    """UUIDv7 ids (and their hex forms) for ``count`` ticks from ``first_tick`` (RFC 9562, method 1).

    Layout: 48-bit milliseconds | version 7 | 12-bit counter | variant 0b10 | 62 random bits.
    """
    randoms = memoryview(os.urandom(8 * count)).cast("Q")
    values: list[int] = []
    tick, end, done = first_tick, first_tick + count, 0
    while tick < end:
        millis, counter = tick >> 12, tick & 0xFFF
        step = min(4096 - counter, end - tick)
        base = (millis << 80) | (0x7 << 76) | (0b10 << 62)
        values += [
            base | shifted | (random >> 2)
            for shifted, random in zip(
                _COUNTER_BITS[counter : counter + step], randoms[done : done + step], strict=True
            )
        ]
        tick, done = tick + step, done + step
    return _uuids(values), [f"{value:032x}" for value in values]


def _uuids_checked(values: list[int]) -> list[UUID]:
    """``UUID`` objects for 128-bit ints, built the way ``UUID.__init__`` ends (and unpickling does).

    ``UUID(int=...)`` spends most of its time checking which of its five arguments was given; these ints
    are in range by construction. Used only if it gives exactly what ``UUID(int=...)`` gives (see below).
    """
    new, assign, unknown = object.__new__, object.__setattr__, SafeUUID.unknown
    uuids = []
    for value in values:
        uuid = new(UUID)
        assign(uuid, "int", value)
        assign(uuid, "is_safe", unknown)
        uuids.append(uuid)
    return uuids


def _uuids_plain(values: list[int]) -> list[UUID]:
    return [UUID(int=value) for value in values]


def _pick_uuid_builder() -> Callable[[list[int]], list[UUID]]:
    probe = 0x0190F2A6B1C27ABC8DEF0123456789AB
    try:
        (built,), plain = _uuids_checked([probe]), UUID(int=probe)
        same = (built == plain and hash(built) == hash(plain) and str(built) == str(plain)
                and built.is_safe is plain.is_safe and built.version == plain.version == 7
                and type(built) is UUID and not hasattr(built, "__dict__"))
    except Exception:  # pragma: no cover - a Python whose UUID is built differently
        same = False
    return _uuids_checked if same else _uuids_plain  # pragma: no branch


_uuids = _pick_uuid_builder()


def new_uuid7() -> UUID:
    """One new time-ordered UUIDv7 id, greater than every id this process handed out before."""
    return uuid7s(reserve_ticks(1), 1)[0][0]
