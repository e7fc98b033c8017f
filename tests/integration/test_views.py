"""Views beyond the built-in one: registering, versioning and rebuilding them on every store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from crmcore import CRM
from crmcore.aggregates import Party
from crmcore.projections import Row, View, ViewVersionConflict


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
