"""A sales team's month: tasks and agendas, segments that follow the facts, ranking, qualification, scoring.

March 2025 in a small sales team. Giulia looks after the northern accounts, Marco after the rest, and
Sara helps both with quotes and mailings. Their book holds four customers with a history of won deals
since 2024, two targets with an open deal, and two new leads. Through the month:

* they plan calls, meetings, e-mails and documentation for their parties; Giulia moves a call, Marco
  cancels one, the rest are done (a completed call or meeting is an interaction, recorded on the party);
* three segments watch the book: the northern pipeline (leads, prospects and targets whose ``region``
  custom field says North), the customers we may e-mail (subscribed to e-mail, with a deliverable
  address) and the open deals outside the northern pipeline (a segment of a segment). A bounce, an
  unsubscription, a subscription, a corrected region, a won deal and a new deal move parties in and out;
* marketing adopts the qualification fields and assesses the two leads under the default BANT policy:
  one qualifies, the other is refused, and later disqualified.

Then the script prints Giulia's agenda on the morning of Wednesday 12 March, the team's workload, how
the month's tasks went, each segment's members and entries and exits, one segment as it stood on
10 March, and the best customers by the targeting score at the end of the month.

Last, predictive lead scoring, in a second store: a simulated year of 2024 (300 deals planned by
``crmcore.testing.sales.simulate_sales``, their parties from ``crmcore.testing.scoring.sales_parties``,
whose source channel and industry lean with how their deals end) trains a model that scores five new
leads of January 2025, each with its reasons; a backtest replays the scoring at the start of the last
three quarters of 2024 and measures how well it ranked the leads that then converted.

Every business date is fixed, so the output is the same on every run but for the stores' paths. Run it
from anywhere: ``python examples/sales_team.py``. The stores are fresh SQLite files in a temporary
directory, removed when the script ends.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from crmcore import (
    CRM,
    DEFAULT_QUALIFICATION,
    AgendaItem,
    LeadAssessment,
    Qualification,
    QualificationRefused,
    ScoringFigures,
)
from crmcore.testing.sales import load_sales, simulate_sales
from crmcore.testing.scoring import sales_parties

TEAM = ("giulia", "marco", "sara")
#: The moment the month is looked back on: rankings and workloads "at the end of the month".
MONTH_END = datetime(2025, 3, 31, 18, 0, tzinfo=UTC)
#: Giulia's agenda is read on this day, as it stood at 8 in the morning (before the day's work).
AGENDA_DAY = date(2025, 3, 12)

#: The simulated history for predictive scoring: how many deals, from when, and the seed that plans them.
HISTORY_DEALS = 300
HISTORY_SEED = 3
HISTORY_START = datetime(2024, 1, 1, tzinfo=UTC)


def march(day: int, hour: int = 9, minute: int = 0) -> datetime:
    """A moment of March 2025 (UTC)."""
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


def on(year: int, month: int, day: int, hour: int = 9) -> datetime:
    """A moment before the month (UTC)."""
    return datetime(year, month, day, hour, 0, tzinfo=UTC)


@dataclass
class Month:
    """What the script needs from the month it played: parties, tasks and segments by name, and the
    qualification decisions."""

    parties: dict[str, UUID] = field(default_factory=dict)
    tasks: dict[str, UUID] = field(default_factory=dict)
    segments: dict[str, UUID] = field(default_factory=dict)
    assessments: dict[str, LeadAssessment] = field(default_factory=dict)
    qualified: dict[str, Qualification] = field(default_factory=dict)
    refused: dict[str, QualificationRefused] = field(default_factory=dict)

    def name_of(self, party: UUID) -> str:
        return next((name for name, p in self.parties.items() if p == party), str(party))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="crmcore-sales-team-") as tmp:
        store = f"sqlite:///{Path(tmp) / 'sales_team.db'}"
        print(f"store: {store} (temporary)")
        with CRM(store) as crm:
            month = Month()
            build_the_book(crm, month)
            play_the_month(crm, month)
            print_tasks(crm, month)
            print_segments(crm, month)
            print_ranking(crm)
            print_qualification(month)
        history = f"sqlite:///{Path(tmp) / 'sales_history.db'}"
        print()
        print(f"store for predictive scoring: {history} (temporary)")
        with CRM(history) as crm:
            print_predictive_scoring(crm)


# ---------------------------------------------------------------------- the book and the month


def build_the_book(crm: CRM, month: Month) -> None:
    """The parties as they stand on 1 March 2025, with their deals since 2024."""
    crm.define_field(name="region", kind="choice", choices=["North", "Centre", "South"],
                     synonyms={"nord": "North", "centro": "Centre", "sud": "South"},
                     actor="admin", effective_at=on(2023, 9, 1))

    def organization(name: str, region: str, owner: str, registered: datetime, *, stage: str = "target",
                     email: str | None = None, channel: str | None = None) -> UUID:
        party = crm.register_party(
            kind="organization", name=name, stage=stage, owner=owner, fields={"region": region},
            emails=[email] if email else None, channel=channel, actor="marketing:import",
            effective_at=registered,
        )
        month.parties[name] = party
        return party

    def subscribed(party: UUID, when: datetime) -> None:
        crm.subscribe_to(party, channel="email", source="web form", lawful_basis="consent",
                         evidence="double opt-in", actor="website", effective_at=when)

    ferro = organization("Ferro Engineering", "North", "giulia", on(2023, 10, 2), email="ferro@example.com")
    lago = organization("Lago Foods", "South", "marco", on(2023, 10, 9), email="lago@example.com")
    aurora = organization("Aurora Textiles", "Centre", "marco", on(2024, 2, 5), email="aurora@example.com")
    delta = organization("Delta Logistics", "North", "giulia", on(2024, 6, 3), email="delta@example.com")
    sole = organization("Sole Energy", "South", "marco", on(2024, 9, 16), email="sole@example.com")
    # Olivo Labs' region was entered wrongly: they moved to Milan, which a call in March finds out.
    olivo = organization("Olivo Labs", "South", "giulia", on(2024, 11, 4))
    organization("Vento Design", "North", "giulia", on(2025, 2, 20), stage="lead", channel="web_form")
    organization("Ponte Systems", "North", "giulia", on(2025, 2, 25), stage="lead", channel="event")
    for party, when in ((lago, on(2023, 11, 6)), (ferro, on(2024, 2, 1)), (aurora, on(2024, 4, 2)),
                        (sole, on(2024, 10, 1))):
        subscribed(party, when)

    # Won deals since 2024 (each win makes its target a customer), and the deals still open in March.
    won = [
        (lago, "Cold store", "40000", on(2024, 2, 12), on(2024, 3, 8)),
        (ferro, "Welding cell", "18000", on(2024, 4, 2), on(2024, 5, 14)),
        (aurora, "Dye line audit", "7000", on(2024, 8, 5), on(2024, 9, 17)),
        (ferro, "Service contract", "9500", on(2024, 10, 21), on(2024, 11, 20)),
        (delta, "Fleet tracking", "22000", on(2024, 10, 28), on(2024, 12, 5)),
        (aurora, "Dye line upgrade", "6500", on(2024, 12, 9), on(2025, 1, 21)),
        (ferro, "Spare parts", "12000", on(2025, 1, 13), on(2025, 2, 12)),
    ]
    for party, title, amount, opened, closed in won:
        deal = open_deal(crm, party, title, amount, opened)
        crm.win(deal, actor=owner_of(crm, party), effective_at=closed)
    open_deal(crm, sole, "Solar roof maintenance", "15000", on(2025, 2, 10))
    open_deal(crm, ferro, "Second production line", "30000", on(2025, 2, 24))
    open_deal(crm, olivo, "Lab software licences", "8000", on(2025, 2, 17))

    customers = crm.parties(stage="customer")
    print(f"the book on 1 March 2025: {len(month.parties)} parties, {len(customers)} customers "
          f"({', '.join(c.name for c in customers)}), {len(won)} deals won since 2024, "
          f"{len(crm.opportunities(status='open'))} open")


def open_deal(crm: CRM, party: UUID, title: str, amount: str, opened: datetime) -> UUID:
    return crm.open_opportunity(party, title=title, value=amount, currency="EUR",
                                expected_close=(opened + timedelta(days=90)).date(),
                                owner=owner_of(crm, party), actor=owner_of(crm, party), effective_at=opened)


def owner_of(crm: CRM, party: UUID) -> str:
    owner = crm.get_party(party).owner
    assert owner is not None
    return owner


def play_the_month(crm: CRM, month: Month) -> None:
    """March 2025, command by command, in the order things happened."""
    p, t = month.parties, month.tasks

    # Monday 3: the segments are saved, and the week's work planned.
    northern = crm.define_segment(
        name="Northern pipeline",
        criteria={"all": [{"stage": ["lead", "prospect", "target"]}, {"field": "region", "eq": "nord"}]},
        actor="giulia", effective_at=march(3, 8))
    mailable = crm.define_segment(
        name="Customers we may e-mail",
        criteria={"all": [{"stage": "customer"}, {"consent": "email", "is": "subscribed"},
                          {"deliverable": "email"}]},
        actor="sara", effective_at=march(3, 8))
    elsewhere = crm.define_segment(
        name="Open deals outside the northern pipeline",
        criteria={"all": [{"open_opportunities": {"min": 1}}, {"not": {"segment": str(northern)}}]},
        actor="marco", effective_at=march(3, 8))
    month.segments.update({"Northern pipeline": northern, "Customers we may e-mail": mailable,
                           "Open deals outside the northern pipeline": elsewhere})

    def plan(key: str, kind: str, subject: str, party: str, assignees: list[str], planned: datetime,
             **schedule: Any) -> None:
        t[key] = crm.plan_task(kind=kind, subject=subject, party_id=p[party], assignees=assignees,
                               actor=assignees[0], effective_at=planned, **schedule)

    plan("ferro call", "call", "Upsell call: second production line", "Ferro Engineering", ["giulia"],
         march(3, 8, 30), due_at=march(5, 10), duration_minutes=30, priority="high")
    plan("ferro quote", "documentation", "Quote for the second production line", "Ferro Engineering",
         ["giulia", "sara"], march(3, 8, 30), deadline=date(2025, 3, 10))
    plan("vento meeting", "meeting", "Discovery meeting", "Vento Design", ["giulia"], march(3, 8, 30),
         due_at=march(11, 14), duration_minutes=90)
    plan("ponte call", "call", "First call", "Ponte Systems", ["giulia"], march(3, 8, 30),
         due_at=march(10, 9, 30), duration_minutes=20)
    plan("delta review", "meeting", "Quarterly review", "Delta Logistics", ["giulia"], march(3, 8, 30),
         due_at=march(14, 11), duration_minutes=60)
    plan("olivo call", "call", "Check the delivery address", "Olivo Labs", ["giulia"], march(3, 8, 30),
         due_at=march(20, 10), duration_minutes=15)
    plan("lago call", "call", "Why are our mails bouncing?", "Lago Foods", ["marco"], march(3, 9),
         due_at=march(10, 11), duration_minutes=15, priority="high")
    plan("sole meeting", "meeting", "Negotiation", "Sole Energy", ["marco"], march(3, 9),
         due_at=march(19, 15), duration_minutes=60)
    plan("aurora call", "call", "Spring check-in", "Aurora Textiles", ["marco"], march(3, 9),
         due_at=march(24, 10), duration_minutes=20)
    plan("aurora catalogue", "email", "Send the spring catalogue", "Aurora Textiles", ["sara"], march(3, 9),
         deadline=date(2025, 3, 18))

    def done(key: str, by: str, when: datetime, minutes: int, outcome: str) -> None:
        crm.complete_task(t[key], by=by, time_spent_minutes=minutes, outcome=outcome, actor=by,
                          effective_at=when)

    done("ferro call", "giulia", march(5, 10, 40), 25, "Wants a quote by the 10th")
    # Friday 7: Lago's address bounces; Giulia moves the call with Ponte Systems to next Friday.
    crm.record_delivery(p["Lago Foods"], address="lago@example.com", raw_code="550 5.1.1 user unknown",
                        actor="mailer", effective_at=march(7, 6))
    crm.reschedule_task(t["ponte call"], due_at=march(14, 9, 30), duration_minutes=20, actor="giulia",
                        effective_at=march(7, 16))
    done("lago call", "marco", march(10, 11, 10), 10, "New mail server, new address to follow")
    done("vento meeting", "giulia", march(11, 15, 45), 100, "Needs a pilot before the summer")
    plan("vento follow-up", "call", "Follow-up: pilot scope", "Vento Design", ["giulia"], march(11, 16),
         due_at=march(12, 16), duration_minutes=20)
    plan("vento kick-off", "meeting", "Pilot kick-off", "Vento Design", ["giulia"], march(11, 16),
         due_at=datetime(2025, 4, 2, 10, tzinfo=UTC), duration_minutes=120)
    done("vento follow-up", "giulia", march(12, 16, 30), 20, "Pilot scope agreed")
    done("ferro quote", "sara", march(13, 17), 180, "Quote sent")
    done("ponte call", "giulia", march(14, 9, 50), 20, "Interested, but our contact does not decide")
    done("delta review", "giulia", march(14, 12), 60, "Happy with the tracking; wants our newsletter")
    crm.subscribe_to(p["Delta Logistics"], channel="email", source="quarterly review", lawful_basis="consent",
                     evidence="signed form", actor="giulia", effective_at=march(14, 12, 5))

    # Monday 17: marketing adopts the qualification fields and judges the two leads under BANT.
    crm.adopt_qualification_fields(actor="admin", effective_at=march(17, 9))
    crm.set_fields(p["Vento Design"], values={"industry": "industrial design", "budget": "25000",
                                              "decision_role": "CEO", "need": "a pilot of the configurator",
                                              "timeframe": "within 3 months"},
                   actor="eva", effective_at=march(17, 9, 30))
    crm.set_fields(p["Ponte Systems"], values={"industry": "software", "budget": "8000",
                                               "decision_role": "influencer"},
                   actor="eva", effective_at=march(17, 9, 40))
    for name in ("Vento Design", "Ponte Systems"):
        month.assessments[name] = crm.assess_lead(p[name], at=march(17, 10))
        try:
            month.qualified[name] = crm.qualify(p[name], require_policy=True, actor="eva",
                                                effective_at=march(17, 10))
        except QualificationRefused as refused:
            month.refused[name] = refused
    open_deal(crm, p["Vento Design"], "Configurator pilot", "6000", march(18, 9))

    done("aurora catalogue", "sara", march(18, 11), 30, "Sent with the price list")
    done("sole meeting", "marco", march(19, 16, 10), 70, "Price agreed, they sign next week")
    done("olivo call", "giulia", march(20, 10, 15), 15, "They moved to Milan")
    crm.set_fields(p["Olivo Labs"], values={"region": "North"}, actor="giulia",
                   effective_at=march(20, 10, 30))
    # Friday 21: Aurora asks to hear no more from us; Marco cancels his check-in.
    crm.unsubscribe_from(p["Aurora Textiles"], channel="email", source="reply to the catalogue",
                         actor="sara", effective_at=march(21, 9))
    crm.cancel_task(t["aurora call"], reason="asked not to be contacted", actor="marco",
                    effective_at=march(21, 9, 30))
    crm.disqualify(p["Ponte Systems"], reason="the CEO sees no need this year", policy=DEFAULT_QUALIFICATION,
                   actor="eva", effective_at=march(25, 9))
    sole_deal = next(o.id for o in crm.opportunities(status="open") if o.party_id == p["Sole Energy"])
    crm.win(sole_deal, actor="marco", effective_at=march(26, 11))
    lago_deal = open_deal(crm, p["Lago Foods"], "New season range", "20000", march(28, 10))
    t["lago offer"] = crm.plan_task(kind="documentation", subject="Offer for the new season range",
                                    party_id=p["Lago Foods"], opportunity_id=lago_deal, assignees=["marco"],
                                    deadline=date(2025, 4, 4), actor="marco", effective_at=march(28, 10, 30))


# ---------------------------------------------------------------------- 1. tasks


def print_tasks(crm: CRM, month: Month) -> None:
    morning = datetime.combine(AGENDA_DAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=8)
    agenda = crm.agenda("giulia", on=AGENDA_DAY, at=morning)
    print()
    print("== 1. tasks ==")
    print(f"giulia's agenda for {AGENDA_DAY:%A %d %B %Y}, as it stood at {morning:%H:%M}: "
          f"{agenda.open_count} open tasks")
    for title, items in (("overdue", agenda.overdue), ("today", agenda.today),
                         ("this week", agenda.this_week), ("later", agenda.later)):
        print(f"  {title}:")
        for item in items:
            print(f"    {agenda_line(item, month)}")
    ponte = crm.get_task(month.tasks["ponte call"])
    for move in ponte.schedule_history:
        print(f"  (the call with Ponte Systems was due {move.due_at:%d %B %H:%M}; {move.actor} moved it on "
              f"{move.effective_at:%d %B} to {ponte.due_at:%d %B %H:%M})")

    print()
    print("team workload (open tasks: overdue / today / this week / later, minutes planned):")
    for title, day, at in ((f"on {AGENDA_DAY:%d %B} at {morning:%H:%M}", AGENDA_DAY, morning),
                           (f"on {MONTH_END:%d %B} at {MONTH_END:%H:%M}", MONTH_END.date(), MONTH_END)):
        print(f"  {title}:")
        workload = crm.workload(TEAM, on=day, at=at)
        for name, entry in workload.assignees.items():
            print(f"    {name:<7} {entry.overdue} / {entry.today} / {entry.this_week} / {entry.later}, "
                  f"{entry.planned_minutes} min")

    analysis = crm.task_analysis(since=date(2025, 3, 1), until=date(2025, 4, 1))
    print()
    print("the month's closed tasks (a collective task counts for each of its people):")
    for name, person in analysis.assignees.items():
        lateness = "" if person.mean_days_late is None else f" ({person.mean_days_late:.0f} days on average)"
        print(f"  {name:<7} completed {person.completed}, {person.on_time} on time, {person.late} late"
              f"{lateness}; {person.time_spent_minutes} min spent; cancelled {person.cancelled}")

    vento = crm.timeline(month.parties["Vento Design"])
    interactions = [e for e in vento if e.event == "InteractionRecorded"]
    print("interactions recorded on Vento Design by its completed call and meeting: "
          + "; ".join(f"{e.effective_at:%d %b} {e.data['kind']} ({e.data['outcome']})" for e in interactions))


def agenda_line(item: AgendaItem, month: Month) -> str:
    when = f"{item.due_at:%a %d %b %H:%M}" if item.due_at else f"{item.deadline:%a %d %b} (deadline)"
    party = month.name_of(item.party_id) if item.party_id else "-"
    people = ", ".join(item.assignees)
    return f"{when:<22} {item.kind:<13} {item.subject} [{party}; {people}; {item.priority.value}]"


# ---------------------------------------------------------------------- 2. segments


def print_segments(crm: CRM, month: Month) -> None:
    print()
    print("== 2. segments ==")
    for name, segment in month.segments.items():
        members = crm.segment_members(segment)
        print(f"{name}: {len(members)} members now")
        for member in members.members:
            print(f"  {member.name} ({member.stage.value}), since {member.since:%d %b %H:%M}, "
                  f"through {member.cause}")
        print("  entries and exits:")
        for change in crm.segment_changes(segment):
            print(f"    {change.at:%d %b %H:%M}  {change.change:<7}  {month.name_of(change.party_id):<18} "
                  f"{change.cause}")
    then = march(10, 12)
    northern = crm.segment_members(month.segments["Northern pipeline"], at=then)
    print(f"Northern pipeline as of {then:%d %B %H:%M}: "
          f"{', '.join(f'{m.name} ({m.stage.value})' for m in northern.members)}")


# ---------------------------------------------------------------------- 3. ranking


def print_ranking(crm: CRM) -> None:
    ranking = crm.rank_customers(at=MONTH_END, limit=3)
    print()
    print("== 3. ranking ==")
    print(f"the best {len(ranking.customers)} of {ranking.considered} customers on {MONTH_END:%d %B %Y} "
          f"(value: won {ranking.currency} over 730 days):")
    print(f"  {'#':>2} {'customer':<18} {'score':>5} {'recency':>8} {'frequency':>9} {'engagement':>10} "
          f"{'value':>6}  {'last purchase':<13} {'wins':>4} {'interactions':>12} {'won value':>9}")
    for c in ranking.customers:
        last = f"{c.last_purchase_at:%Y-%m-%d}" if c.last_purchase_at else "never"
        print(f"  {c.rank:>2} {c.name:<18} {c.score:>5} {c.recency:>8} {c.frequency:>9} {c.engagement:>10} "
              f"{c.value:>6}  {last:<13} {c.wins:>4} {c.interactions:>12} {c.value_amount:>9,.0f}")


# ---------------------------------------------------------------------- 4. qualification


def print_qualification(month: Month) -> None:
    print()
    print("== 4. qualification ==")
    for name, assessment in month.assessments.items():
        failed = f"; failed: {', '.join(assessment.failed)}" if assessment.failed else ""
        print(f"{name} under {assessment.policy_name} v{assessment.policy_version}: "
              f"{assessment.recommendation.value}, score {assessment.score}{failed}")
    for name, qualification in month.qualified.items():
        print(f"qualify {name} (policy required): now a {qualification.stage.value}")
    for name, refused in month.refused.items():
        print(f"qualify {name} (policy required): refused, {refused.recommendation} "
              f"(score {refused.score}); failed: {', '.join(refused.failed)}")


# ---------------------------------------------------------------------- 5. predictive scoring

#: January's new leads: where their interest came from, and their industry.
NEW_LEADS = (
    ("Officina Bianchi", "referral", "manufacturing"),
    ("Galli Retail", "web_form", "retail"),
    ("Comune di Lago", "email", "public sector"),
    ("Moretti Services", "event", "services"),
    ("Conti Automazione", "web_form", "manufacturing"),
)
VARIABLES = ["channel", "industry"]


def print_predictive_scoring(crm: CRM) -> None:
    steps = simulate_sales(opportunities=HISTORY_DEALS, start=HISTORY_START, days=365, seed=HISTORY_SEED)
    parties = sales_parties(crm, steps, seed=HISTORY_SEED, extra_leads=0)
    # Marketing qualifies each lead an hour before its deal opens; then the deals are written, and each win
    # makes its party a customer.
    for step in steps:
        if step.command == "open":
            crm.qualify(parties[step.opportunity], actor="marketing",
                        effective_at=step.at - timedelta(hours=1))
    load_sales(crm, steps, lambda index: parties[index])
    crm.run_policies()
    print()
    print("== 5. predictive scoring ==")
    print(f"simulated 2024: {len(parties)} parties, {len(steps)} sales commands, "
          f"{len(crm.parties(stage='customer'))} customers at the end")

    model = crm.train_scoring(variables=VARIABLES, actor="analyst")
    prior = Decimal(100 * model.won) / (model.won + model.lost)
    print(f"model v{model.version} on {', '.join(VARIABLES)}: {model.won} won and {model.lost} lost deals "
          f"(prior {prior:.1f}%)")
    for number, (name, channel, industry) in enumerate(NEW_LEADS):
        crm.register_party(kind="organization", name=name, stage="lead", channel=channel,
                           profile={"industry": industry}, actor="marketing",
                           effective_at=datetime(2025, 1, 7 + number, 9, tzinfo=UTC))
    scores = crm.score_leads()
    print(f"January's {len(scores)} new leads, the best 3:")
    for score in scores[:3]:
        print(f"  {score.name:<18} {score.score:>5}%")
        for r in score.reasons:
            print(f"    {r.variable} = {r.value}: {r.effect}, likelihood ratio {r.likelihood_ratio} "
                  f"({r.won} won, {r.lost} lost)")

    backtest = crm.scoring_backtest(variables=VARIABLES, periods=3, until=date(2025, 1, 1))
    print("backtest: a model trained at each cut-off scores the parties not yet customers; did they convert "
          "before 2025?")
    print(f"  {'cut-off':<8} {'decided':>7} {'leads':>5} {'converted':>9} {'AUC':>6} {'base%':>6} "
          f"{'top10%':>6} {'lift':>5}")
    for cutoff in backtest.cutoffs:
        print(f"  {cutoff.label:<8} {cutoff.decisions:>7} {figures(cutoff)}")
    print(f"  {'overall':<8} {'':>7} {figures(backtest.overall)}")


def figures(f: ScoringFigures) -> str:
    return (f"{f.leads:>5} {f.converted:>9} {show(f.auc):>6} {show(f.base_rate_percent):>6} "
            f"{show(f.top_decile_rate_percent):>6} {show(f.lift):>5}")


def show(value: Decimal | None) -> str:
    return "-" if value is None else str(value)


if __name__ == "__main__":
    main()
