"""The engagement policy: when a party counts as inactive, at the edges of its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from crmcore import DEFAULT_ENGAGEMENT, EngagementPolicy
from crmcore.policies.engagement import is_inactive

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
DAY, YEAR = timedelta(days=1), timedelta(days=365)


def row(first_delivery: datetime | None = T0, *, last_open: datetime | None = None,
        last_click: datetime | None = None) -> dict[str, Any]:
    fields = {"first_delivery": first_delivery, "last_open": last_open, "last_click": last_click}
    return {"party_id": "p", **{k: v.isoformat() for k, v in fields.items() if v is not None}}


def test_the_default_policy_is_named_versioned_and_waits_a_year() -> None:
    assert (DEFAULT_ENGAGEMENT.name, DEFAULT_ENGAGEMENT.version) == ("engagement", 1)
    assert DEFAULT_ENGAGEMENT.inactive_after == YEAR
    assert DEFAULT_ENGAGEMENT.recorded() == {"name": "engagement", "version": 1}


def test_a_party_mailed_a_year_ago_exactly_with_no_open_since_is_inactive() -> None:
    assert is_inactive(row(), T0 + YEAR)
    assert not is_inactive(row(), T0 + YEAR - timedelta(microseconds=1))


def test_a_party_never_mailed_is_not_inactive() -> None:
    assert not is_inactive(None, T0 + 10 * YEAR)
    assert not is_inactive(row(None), T0 + 10 * YEAR)


def test_a_party_first_mailed_less_than_a_year_ago_is_not_inactive_yet() -> None:
    assert not is_inactive(row(T0 + DAY), T0 + YEAR)


def test_an_open_or_a_click_within_the_year_keeps_a_party_active() -> None:
    assert not is_inactive(row(last_open=T0 + 10 * DAY), T0 + YEAR)
    assert not is_inactive(row(last_click=T0 + 10 * DAY), T0 + YEAR)
    assert not is_inactive(row(last_open=T0 + YEAR), T0 + YEAR)  # the window includes its end


def test_an_open_exactly_a_year_before_is_outside_the_window() -> None:
    assert is_inactive(row(last_open=T0 + 10 * DAY), T0 + 10 * DAY + YEAR)
    assert not is_inactive(row(last_open=T0 + 10 * DAY), T0 + 10 * DAY + YEAR - timedelta(microseconds=1))


def test_times_in_any_offset_compare_as_moments() -> None:
    rome = datetime(2026, 1, 6, 11, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Rome"))
    assert is_inactive(row(), rome)  # 2026-01-06 11:00 UTC is past a year after T0
    assert not is_inactive(row(last_open=T0 + 2 * DAY), rome)


def test_a_shorter_window_makes_parties_inactive_sooner() -> None:
    month = EngagementPolicy(inactive_after_days=30, version=2)
    assert is_inactive(row(last_open=T0 + DAY), T0 + 31 * DAY, month)
    assert not is_inactive(row(last_open=T0 + DAY), T0 + 31 * DAY)


@pytest.mark.parametrize("fields", [{"inactive_after_days": 0}, {"version": 0}, {"name": ""},
                                    {"inactive_after_days": 1.5}, {"surprise": 1}])
def test_a_bad_policy_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EngagementPolicy(**fields)


def test_a_policy_is_frozen() -> None:
    with pytest.raises(ValidationError):
        DEFAULT_ENGAGEMENT.inactive_after_days = 1  # type: ignore[misc]
