"""Data hygiene on a CRM nobody cleaned for two years: the report, the quarterly trend, the clean-up's dry
run and its what-if over history.

A company has gathered 3,000 contacts through 2024 and 2025 (a seeded synthetic history: imports, leads
worked by three reps at different paces, deals won and lost, a quarterly newsletter with its opens, clicks,
bounces and unsubscribes). On 1 January 2026 the sales manager looks at the state of the data:

* the hygiene report: the average stay in each open stage measured from history, the parties stale for
  longer than 2.5 times that, the inactive (no open or click for 12 months), the bounced and unsubscribed
  addresses, each rep's incomplete records, the values that break the current field rules, the duplicates;
* the quarterly trend of those numbers over the two years;
* what the quarterly clean-up would do today (a dry run: nothing is recorded), and what it would have
  cost had it run at each past quarter's end: the parties it would have set aside, and how many of them
  opened, replied, opened an opportunity or bought afterwards.

Then the clean-up really runs, and one party it set aside is put back. Every business date is fixed and
every draw seeded, so everything up to the real run prints the same on every run; the real run judges the
data as it stands today, so its numbers grow with the date. Run it from anywhere:
``python examples/hygiene.py``; the store is a fresh SQLite file in a temporary directory.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from crmcore import CRM, CleanUpPolicy
from crmcore.testing.history import load_history, simulate_history

START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)


def main() -> None:
    history = simulate_history(parties=3000, seed=7, start=START, years=2)
    with tempfile.TemporaryDirectory() as folder, CRM(f"sqlite:///{Path(folder) / 'hygiene.db'}") as crm:
        events = load_history(crm, history)
        print(f"loaded {history.summary.parties:,} parties and {events:,} events, "
              f"{START:%d %b %Y} to {END:%d %b %Y}")

        report = crm.hygiene_report(at=END)
        counts = report.counts
        print(f"\nHygiene report as of {END:%d %b %Y}: {counts.parties:,} parties")
        for average in report.stage_averages:
            print(f"  {average.stage.value:<9} average stay {average.days:>7} days "
                  f"({average.samples} stays, {average.basis})")
        print(f"  stale {counts.stale}, inactive {counts.inactive}, bounced addresses {counts.bounced} "
              f"({counts.bounced_parties} parties), unsubscribed {counts.unsubscribed}, "
              f"incomplete {counts.incomplete}, set aside {counts.set_aside}")
        for stale in report.stale[:3]:
            print(f"  stale: {stale.name:<24} {stale.stage.value:<9} {stale.days_in_stage:>7} days "
                  f"(threshold {stale.threshold_days})")
        for owner, parties in report.incomplete_by_owner().items():
            print(f"  to complete for {owner or 'nobody (unowned)'}: {len(parties)} records")
        now = crm.hygiene_report()  # rule breaks and duplicates are computed now only
        print(f"  values breaking the current field rules: {len(now.rule_breaks or [])}; "
              f"duplicate pairs: {len(now.duplicates or [])}")

        print("\nQuarterly trend   parties  stale  inactive  bounced  unsubscribed  incomplete")
        for q in crm.hygiene_trend(quarters=8, until=END):
            print(f"  {q.quarter}        {q.parties:>5}  {q.stale:>5}  {q.inactive:>8}  {q.bounced:>7}  "
                  f"{q.unsubscribed:>12}  {q.incomplete:>10}")

        dry = crm.clean_up(actor="sales:manager", dry_run=True, at=END)
        print(f"\nClean-up dry run as of {END:%d %b %Y} (nothing recorded):")
        print(f"  {dry.count('newsletter')} moved to the newsletter list, "
              f"{dry.count('suppress_address')} addresses suppressed, "
              f"{dry.count('completion_task')} completion tasks")
        print(f"  stale {dry.counts_before.stale} -> {dry.counts_after.stale}, "
              f"set aside {dry.counts_before.set_aside} -> {dry.counts_after.set_aside}, "
              f"incomplete {dry.counts_before.incomplete} -> {dry.counts_after.incomplete}")

        print("\nWhat-if: stale parties set aside at each quarter's end, and what they did until 2026")
        print("  quarter   set aside  opened  clicked  replied  opportunity  bought  won")
        for quarter in crm.clean_up_what_if(policy=CleanUpPolicy(stale_action="set_aside"), until=END):
            won = ", ".join(f"{amount:,.0f} {currency}" for currency, amount in quarter.won_value.items())
            print(f"  {quarter.quarter}   {quarter.set_aside:>9}  {quarter.opened:>6}  {quarter.clicked:>7}  "
                  f"{quarter.replied:>7}  {quarter.opportunity:>11}  {quarter.bought:>6}  {won or '-'}")

        run = crm.clean_up(actor="sales:manager")
        print(f"\nClean-up run today: {len(run.actions)} actions recorded as run {run.run_id}")
        moved = next((a.party_id for a in run.actions if a.kind == "newsletter"), None)
        if moved is not None:
            back = crm.revert_clean_up(run.run_id or moved, party_id=moved, actor="sales:giulia",
                                       reason="called back: interested again")
            party = crm.get_party(moved)
            print(f"  put back {party.name}: set aside {party.set_aside}; "
                  f"{len(back.reverted)} of {len(run.parties)} parties reverted")


if __name__ == "__main__":
    main()
