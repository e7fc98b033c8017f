"""The audience policy: each rule, in order, with its reason; duplicates keep the first registered."""

from __future__ import annotations

from crmcore.policies.audience import Candidate, select_audience
from crmcore.values import ExclusionReason

SUBSCRIBED = {"newsletter": "subscribed", "phone": "subscribed"}


def member(pid: str, **changes: object) -> Candidate:
    fields: dict[str, object] = {"party_id": pid, "consent": SUBSCRIBED, "email": f"{pid}@example.com",
                                 "phone": f"+3906{pid.encode().hex()[:6]}"}
    fields.update(changes)
    return Candidate(**fields)  # type: ignore[arg-type]


def reasons(audience: object, channel: str) -> dict[str, str]:
    return {p: r for p, c, r, _ in audience.exclusions if c == channel}  # type: ignore[attr-defined]


def test_every_rule_excludes_with_its_reason() -> None:
    candidates = [
        member("a"),
        member("b", consent={}),
        member("c", consent={"newsletter": "unsubscribed", "phone": "subscribed"}),
        member("d", email=None),
        member("e", email="Bounced@Example.com"),
        member("f"),
        member("g", open_opportunities=2),
        member("h", email="a@example.com"),
    ]
    audience = select_audience(candidates, ["newsletter", "telemarketing"],
                               suppressed={"bounced@example.com"}, inactive={"f"})
    assert [p for p, _ in audience.recipients["newsletter"]] == ["a"]
    assert reasons(audience, "newsletter") == {
        "b": "no_consent", "c": "unsubscribed", "d": "no_address", "e": "suppressed", "f": "inactive",
        "g": "open_negotiation", "h": "duplicate",
    }
    # telemarketing reads phone consent; inactivity is a newsletter rule
    assert [p for p, _ in audience.recipients["telemarketing"]] == ["a", "c", "d", "e", "f", "h"]
    assert reasons(audience, "telemarketing") == {"b": "no_consent", "g": "open_negotiation"}


def test_campaign_options_switch_rules_off() -> None:
    candidates = [member("a"), member("f"), member("g", open_opportunities=1)]
    audience = select_audience(candidates, ["newsletter"], inactive={"f"}, include_inactive=True,
                               exclude_open_negotiations=False)
    assert [p for p, _ in audience.recipients["newsletter"]] == ["a", "f", "g"]
    assert audience.exclusions == []


def test_probable_duplicates_keep_the_first_registered() -> None:
    candidates = [member("a"), member("b"), member("c"), member("d", consent={})]
    pairs = [("c", "a", 0.97), ("b", "d", 0.99)]  # d is excluded anyway: b stays
    audience = select_audience(candidates, ["newsletter"], duplicates=pairs)
    assert [p for p, _ in audience.recipients["newsletter"]] == ["a", "b"]
    assert audience.excluded(ExclusionReason.DUPLICATE) == ["c"]
    assert "probably the same as a (match 0.97)" in audience.exclusions[-1][3]


def test_the_first_failing_rule_is_the_one_recorded() -> None:
    both = member("a", consent={"newsletter": "unsubscribed"}, email="x@example.com", open_opportunities=1)
    audience = select_audience([both], ["newsletter"], suppressed={"x@example.com"}, inactive={"a"})
    assert audience.exclusions == [("a", "newsletter", "unsubscribed", "unsubscribed from newsletter")]
