"""A spring campaign: a newsletter, then a telemarketing wave, on a seeded synthetic audience.

A marketing team has 2,000 contacts (leads and customers, with their newsletter and phone consent) and a
segment of the northern ones. Through spring 2025:

* it plans the "Spring offer" campaign over the newsletter and telemarketing, schedules and launches it:
  the audience is frozen, and everyone left out is listed with the reason (no consent, unsubscribed,
  open negotiation, ...);
* it sends the newsletter; the mail tool reports deliveries, opens, clicks, bounces, unsubscribes and
  complaints, late, shuffled and a tenth of them twice: ingested in one call, the repeats change nothing;
  the bounce policy suppresses the hard-bounced addresses and the unsubscribes reach the parties;
* three operators work the call list, a fourth joins halfway (the open entries are rebalanced); interested
  customers get an opportunity linked to the campaign, some of which are won;
* it records the campaign's costs.

Then the script prints the campaign's results: audience and exclusions, the e-mail funnel and its rates,
the calls by operator and outcome, responses, opportunities and won value, redemption and return on cost,
with first- and last-touch attribution. Every business date is fixed and every draw seeded, so the output
is the same on every run. Run it from anywhere: ``python examples/campaigns.py``; the store is a fresh
SQLite file in a temporary directory, removed when the script ends.
"""

from __future__ import annotations

import random
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from crmcore import CRM
from crmcore.testing.audience import newsletter_reports, seed_audience

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, CRM(f"sqlite:///{Path(folder) / 'campaigns.db'}") as crm:
        crm.define_field(name="region", kind="choice", choices=["North", "Centre", "South"], actor="admin",
                         effective_at=START - timedelta(days=30), section="profile")
        seed_audience(crm, 2000, seed=11, start=START - timedelta(days=20))
        north = crm.define_segment(name="Northern contacts", criteria={"field": "region", "eq": "North"},
                                   actor="marketing", effective_at=START - timedelta(days=5))

        spring = crm.plan_campaign(name="Spring offer", channels=["newsletter", "telemarketing"],
                                   segment_id=north, budget={"amount": "6000", "currency": "EUR"},
                                   actor="marketing", effective_at=START)
        crm.schedule_campaign(spring, start_at=START + timedelta(days=7), actor="marketing",
                              effective_at=START + timedelta(hours=1))
        audience = crm.launch_campaign(spring, actor="marketing", effective_at=START + timedelta(days=7))
        print("Audience of 'Spring offer' (frozen at launch)")
        for channel, recipients in audience.recipients.items():
            print(f"  {channel:<14} {len(recipients):>5} recipients")
        for (channel, reason), count in sorted(Counter((e.channel.value, e.reason.value)
                                                       for e in audience.exclusions).items()):
            print(f"  {channel:<14} {count:>5} left out: {reason}")

        # The newsletter goes out; the mail tool reports over the next two weeks.
        sent_at = START + timedelta(days=7, hours=2)
        wave = crm.send_campaign(spring, actor="marketing", effective_at=sent_at)
        reports = newsletter_reports(spring, [(r.party_id, r.address) for r in wave.recipients],
                                     sent_at=sent_at, seed=11)
        report = crm.ingest(reports, source="mail tool", actor="sync")
        again = crm.ingest(reports[:500], source="mail tool", actor="sync")
        print(f"\nNewsletter wave {wave.wave}: {len(wave.recipients)} sent; mail tool reports: "
              f"{report.received} received, {report.stored} stored, {report.duplicates} repeats skipped "
              f"(sent again: {again.stored} stored)")
        print(f"  suppressed addresses now: {len(crm.suppressions())}")

        # The call centre: three operators, a fourth joins after the first days.
        crm.assign_operators(spring, add=["anna", "bruno", "carla"], actor="call centre",
                             effective_at=sent_at + timedelta(days=3))
        rng = random.Random(11)
        day = sent_at + timedelta(days=4)
        outcomes = ["reached", "no_answer", "not_interested", "interested", "call_back", "wrong_number"]
        for round_number in range(2):
            if round_number == 1:
                crm.assign_operators(spring, add=["dario"], actor="call centre", effective_at=day)
            for entry in [e for e in crm.call_list(spring) if e.open][: 60 if round_number == 0 else None]:
                day += timedelta(minutes=7)
                outcome = rng.choices(outcomes, [30, 25, 20, 12, 8, 5])[0]
                fields = {"call_back_on": (day + timedelta(days=10)).date()} if outcome == "call_back" else {}
                party = crm.get_party(entry.party_id)
                deal = None
                if outcome == "interested" and party.stage.value == "customer":
                    deal = {"title": "Spring bundle", "value": {"amount": str(rng.choice((800, 1500, 4000))),
                                                                "currency": "EUR"},
                            "expected_close": (day + timedelta(days=30)).date(), "owner": "giulia"}
                who = str(entry.operator)
                call = crm.record_call(spring, entry.party_id, operator=who, outcome=outcome, actor=who,
                                       effective_at=day, opportunity=deal, **fields)
                if call.opportunity_id is not None and rng.random() < 0.5:
                    crm.win(call.opportunity_id, reasons=["price"], actor="giulia",
                            effective_at=day + timedelta(days=12))
            day += timedelta(days=1)

        crm.record_campaign_cost(spring, amount={"amount": "1200", "currency": "EUR"}, note="mail tool",
                                 actor="marketing", effective_at=day)
        crm.record_campaign_cost(spring, amount={"amount": "3100", "currency": "EUR"}, note="call centre",
                                 actor="marketing", effective_at=day + timedelta(minutes=1))
        crm.complete_campaign(spring, actor="marketing", effective_at=day + timedelta(days=20))

        print_results(crm, spring)


def percent(rate: Decimal | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f} %"


def print_results(crm: CRM, campaign: UUID) -> None:
    """The results table of a campaign."""
    r = crm.campaign_results(campaign)
    print(f"\nResults of '{r.name}' ({r.status.value}), budget {r.budget.amount} {r.budget.currency}, "
          f"cost {r.cost.amount} {r.cost.currency}")
    rows = [
        ("recipients", ", ".join(f"{c.value} {n}" for c, n in r.recipients.items())),
        ("sent", r.sent), ("delivered", r.delivered),
        ("opened (unique / total)", f"{r.opened} / {r.opens}"),
        ("clicked (unique / total)", f"{r.clicked} / {r.clicks}"),
        ("open rate", percent(r.open_rate)), ("click rate", percent(r.click_rate)),
        ("click-to-open rate", percent(r.click_to_open_rate)),
        ("hard / soft bounce rate", f"{percent(r.hard_bounce_rate)} / {percent(r.soft_bounce_rate)}"),
        ("unsubscribe / complaint rate", f"{percent(r.unsubscribe_rate)} / {percent(r.complaint_rate)}"),
        ("called", r.called),
        ("responses (redemption)", f"{r.responses} ({percent(r.response_rate)} of the audience)"),
    ]
    for name, value in rows:
        print(f"  {name:<30} {value}")
    print("  calls by operator:")
    for operator, outcomes in r.calls.items():
        print(f"    {operator:<8} " + ", ".join(f"{o} {n}" for o, n in sorted(outcomes.items())))
    for model, figures in (("first touch", r.first_touch), ("last touch", r.last_touch)):
        won = ", ".join(f"{amount} {currency}" for currency, amount in figures.won_value.items()) or "0"
        print(f"  {model:<12} opportunities {figures.opportunities}, sales {figures.sales} "
              f"({percent(figures.sales_rate)} of the audience), won {won}, ROI {percent(figures.roi)}")


if __name__ == "__main__":
    main()
