"""Views beyond the built-in one: registering, versioning and rebuilding them on every store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from crmcore import CRM
from crmcore.aggregates import Party
from crmcore.projections import Row, View, ViewVersionConflict
from crmcore.projections.storage import PositionMoved


class ChannelCounts(View):
    """How many parties engaged on each channel (one row per channel)."""

    name: ClassVar[str] = "engaged_by_channel"
    version: ClassVar[int] = 1
    event_classes: ClassVar[tuple[type[Any], ...]] = (Party.Engaged,)

    def key(self, event: Any) -> str:
        return str(event.channel)

    def evolve(self, row: Row | None, event: Any) -> Row | None:
        return {"channel": str(event.channel), "count": (row or {"count": 0})["count"] + 1}


class ChannelCountsV2(ChannelCounts):
    """The same view with a changed fold: counts double, to tell the versions apart."""

    version: ClassVar[int] = 2

    def evolve(self, row: Row | None, event: Any) -> Row | None:
        return {"channel": str(event.channel), "count": (row or {"count": 0})["count"] + 2}


def engage_three(crm: CRM) -> None:
    for channel in ("email", "email", "phone"):
        pid = crm.register_party(kind="person", name="P", actor="u")
        crm.engage(pid, channel=channel, actor="u")


def counts(crm: CRM) -> dict[str, int]:
    return {r["channel"]: r["count"] for r in crm.view_rows(ChannelCounts.name)}


@pytest.fixture
def crm_with_view(store_url: str) -> Iterator[CRM]:
    with CRM(store_url, views=[ChannelCounts()]) as crm:
        yield crm


def test_a_host_view_is_kept_up_to_date_from_the_log(crm_with_view: CRM) -> None:
    crm = crm_with_view
    engage_three(crm)
    assert counts(crm) == {"email": 2, "phone": 1}
    assert crm.view_rows(ChannelCounts.name, channel="phone") == [{"channel": "phone", "count": 1}]


def test_raising_a_views_version_rebuilds_it_and_older_code_may_not_wipe_it(store_url: str) -> None:
    if store_url == "memory:":
        pytest.skip("a memory store does not outlive its CRM")
    with CRM(store_url, views=[ChannelCounts()]) as crm:
        engage_three(crm)
        assert counts(crm) == {"email": 2, "phone": 1}
    with CRM(store_url, views=[ChannelCountsV2()]) as crm:
        assert counts(crm) == {"email": 4, "phone": 2}
    with CRM(store_url, views=[ChannelCounts()]) as crm, pytest.raises(ViewVersionConflict):
        crm.view_rows(ChannelCounts.name)


def test_a_view_rebuilt_from_zero_gives_the_same_rows(crm_with_view: CRM) -> None:
    crm = crm_with_view
    engage_three(crm)
    before = counts(crm)
    assert crm.rebuild_view(ChannelCounts.name) == 3
    assert counts(crm) == before


def test_rows_stored_packed_read_as_the_same_rows_in_the_same_order(crm: CRM) -> None:
    """A storage asked to pack a view's rows (SQLite keeps them in compressed buckets; the others one by
    one) gives back exactly what a storage of one row per key gives, through every change and read."""
    import random

    from crmcore.projections import MemoryViewStorage

    def by_key(rows: list[Row]) -> list[Row]:  # (memory storage gives them in no particular order)
        return sorted(rows, key=lambda r: str(r["key"]))

    storage, plain = crm._views_storage, MemoryViewStorage()
    storage.pack_rows("packed_test", 1)
    rng = random.Random(7)
    groups = ["a1", "a2", "b1"]
    keys = [f"{g}:{rng.getrandbits(32):08x}" for g in groups for _ in range(40)]
    for s in (storage, plain):
        assert s.position("packed_test", 1) == 0
    for position in range(6):
        changes: dict[str, Row | None] = {}
        for key in rng.sample(keys, 50):
            changes[key] = None if rng.random() < 0.2 else {
                "key": key, "group": key.split(":")[0], "n": rng.randrange(3), "tags": [rng.randrange(9)]}
        for s in (storage, plain):
            s.commit_page("packed_test", position, position + 1, changes)
        assert storage.load("packed_test", keys[::3]) == plain.load("packed_test", keys[::3])
        for where in ({}, {"n": 1, "group": "a2"}, {"missing": None}):
            assert by_key(storage.rows("packed_test", where)) == by_key(plain.rows("packed_test", where))
        for prefix in ("a", "a1:", "a2:0", "b1:f", "c"):
            assert storage.with_prefix("packed_test", prefix) == plain.with_prefix("packed_test", prefix)
        assert storage.count_by("packed_test", "n") == plain.count_by("packed_test", "n")
    with pytest.raises(PositionMoved):
        storage.commit_page("packed_test", 0, 9, {keys[0]: {"key": keys[0]}})
    storage.reset("packed_test", 1)
    assert storage.rows("packed_test", {}) == []
    assert storage.with_prefix("packed_test", "a1:") == {}
