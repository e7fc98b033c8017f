"""Consent answers agree with a trivial model, whatever order, times and repetitions reports come in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM
from crmcore.policies.consent import ConsentChannel

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
ADDRESSES = {"email": "ada@example.com", "newsletter": "ada@example.com", "phone": "+39 06 1234 5678",
             "sms": "+39 333 123 4567"}

#: One report: (subscribed?, channel, effective day after BASE, external id or None). Few days and few
#: ids, so that ties and repeated reports are common; days come in any order, so reports arrive late.
reports = st.lists(
    st.tuples(
        st.booleans(),
        st.sampled_from([c.value for c in ConsentChannel]),
        st.integers(min_value=0, max_value=12),
        st.none() | st.sampled_from(["e1", "e2", "e3"]),
    ),
    max_size=25,
)


def model_status(accepted: list[tuple[bool, str, int]], channel: str, day: float) -> bool | None:
    """Subscribed? by the last accepted report for the channel at or before ``day`` (ties: recorded last)."""
    candidates = [(d, n, subscribed) for n, (subscribed, ch, d) in enumerate(accepted)
                  if ch == channel and d <= day]
    return max(candidates)[2] if candidates else None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports=reports, registered_day=st.integers(min_value=0, max_value=12))
def test_may_contact_at_any_moment_is_the_last_report_effective_by_then(
    reports: list[tuple[bool, str, int, str | None]], registered_day: int,
) -> None:
    accepted: list[tuple[bool, str, int]] = []
    seen: set[tuple[str, str]] = set()
    with CRM("memory:") as crm:
        party = crm.register_party(kind="person", name="Ada", actor="u",
                                   effective_at=BASE + timedelta(days=registered_day))
        for subscribed, channel, day, external_id in reports:
            fields: dict[str, Any] = {"channel": channel, "source": "mail tool", "actor": "sync",
                                      "external_id": external_id, "effective_at": BASE + timedelta(days=day)}
            if subscribed:
                recorded = crm.subscribe_to(party, lawful_basis="consent", **fields) is not None
            else:
                recorded = bool(crm.unsubscribe_from(party, **fields))
            duplicate = external_id is not None and (external_id, channel) in seen
            assert recorded is not duplicate
            if recorded:
                accepted.append((subscribed, channel, day))
                if external_id is not None:
                    seen.add((external_id, channel))
        for half_days in range(-1, 27):
            day = half_days / 2
            moment = BASE + timedelta(days=day)
            for channel in ConsentChannel:
                decision = crm.may_contact(party, channel, moment, address=ADDRESSES[channel.value])
                expected = model_status(accepted, channel.value, day) is True
                assert decision.allowed is expected, (channel, day, decision.reason)
            if half_days == 26:  # after every report: the mailing exclusions view agrees with the model
                unsubscribed = [c for c in ("email", "newsletter") if model_status(accepted, c, day) is False]
                assert [[c.value for c in m.unsubscribed] for m in crm.mailing_exclusions()] == (
                    [unsubscribed] if unsubscribed else []
                )
            if day >= registered_day:
                as_of = crm.party_as_of(party, moment).consent
                expected_view = {c.value: model_status(accepted, c.value, day) for c in ConsentChannel}
                assert {c.value: s.value == "subscribed" for c, s in as_of.items()} == {
                    ch: status for ch, status in expected_view.items() if status is not None
                }
