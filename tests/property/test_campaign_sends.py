"""No send ever reaches an unsubscribed party or a suppressed address, whatever happens between sends.

Parties subscribe, unsubscribe, bounce (hard, soft) and get deliveries in any order around a campaign's
launch and its send waves. A model kept by the test itself (not by crmcore) says, at each send, who may be
sent: subscribed to the newsletter, and an address neither hard-bounced nor soft-bounced three times since
its last delivery (the default bounce policy; all reports fall within its 60-day window). Every wave must
release exactly the recipients the model allows and hold back the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM

PARTIES = 4
ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["subscribe", "unsubscribe", "hard", "soft", "deliver"]),
                  st.integers(0, PARTIES - 1)),
        st.just(("send", 0)),
    ),
    max_size=30,
)


class Model:
    """Who may be sent the newsletter, kept from the actions alone."""

    def __init__(self) -> None:
        self.subscribed = [True] * PARTIES
        self.hard = [False] * PARTIES
        self.soft = [0] * PARTIES

    def apply(self, action: str, n: int) -> None:
        if action in ("subscribe", "unsubscribe"):
            self.subscribed[n] = action == "subscribe"
        elif action == "hard":
            self.hard[n] = True
        elif action == "soft":
            self.soft[n] += 1
            if self.soft[n] >= 3:
                self.hard[n] = True
        elif action == "deliver":
            self.hard[n], self.soft[n] = False, 0

    def allowed(self, n: int) -> bool:
        return self.subscribed[n] and not self.hard[n]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ACTIONS)
def test_every_wave_releases_exactly_whom_the_rules_allow(actions: list[tuple[str, int]]) -> None:
    start = datetime.now(UTC) - timedelta(days=2)
    codes = {"hard": "550 5.1.1", "soft": "452 4.2.2", "deliver": "250 ok"}
    with CRM("memory:") as crm:
        ids = []
        for n in range(PARTIES):
            party = crm.register_party(kind="person", name=f"P{n}", stage="lead", actor="t",
                                       effective_at=start, emails=[f"p{n}@example.com"])
            crm.subscribe_to(party, channel="newsletter", source="form", lawful_basis="consent", actor="t",
                             effective_at=start)
            ids.append(party)
        segment = crm.define_segment(name="all", criteria={"stage": "lead"}, actor="t", effective_at=start)
        campaign = crm.plan_campaign(name="c", channels=["newsletter"], segment_id=segment,
                                     budget={"amount": "1", "currency": "EUR"}, actor="t", effective_at=start)
        crm.schedule_campaign(campaign, start_at=start, actor="t", effective_at=start)
        crm.launch_campaign(campaign, actor="t", effective_at=start + timedelta(minutes=1))
        model, sent = Model(), set()
        for action, n in actions:
            if action == "send":
                wave = crm.send_campaign(campaign, actor="t")
                released = {ids.index(r.party_id) for r in wave.recipients}
                held = {ids.index(p) for p, _ in wave.skipped}
                pending = set(range(PARTIES)) - sent
                assert released == {i for i in pending if model.allowed(i)}
                assert held == pending - released
                sent |= released
                continue
            model.apply(action, n)
            if action == "subscribe":
                crm.subscribe_to(ids[n], channel="newsletter", source="form", lawful_basis="consent",
                                 actor="t")
            elif action == "unsubscribe":
                crm.unsubscribe_from(ids[n], channel="newsletter", source="form", actor="t")
            else:
                crm.record_delivery(ids[n], address=f"p{n}@example.com", raw_code=codes[action], actor="mail")
