"""Quick start: two leads' stories on the embedded SQLite store, told back from their history.

Grace Hopper fills in a web form naming her company; marketing qualifies her, which makes her a prospect
and her company a target, linked; both are assigned to a sales rep, and the company buys. Alan Turing
writes in too, but fails qualification. Then the script prints each party's timeline, the counts by
stage, kind and owner, and Grace as she stood before she was qualified.

Run it from anywhere: ``python examples/quickstart.py``. The store is a fresh SQLite file in a temporary
directory, removed when the script ends.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from crmcore import CRM, PartyCounts, TimelineEntry

#: The business dates of the story (effective times); every event is recorded when the script runs.
MONDAY = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def day(n: int, hour: int = 9) -> datetime:
    """A moment ``n`` days into the story."""
    return MONDAY + timedelta(days=n, hours=hour - 9)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="crmcore-quickstart-") as tmp:
        store = f"sqlite:///{Path(tmp) / 'quickstart.db'}"
        print(f"store: {store} (temporary)")
        with CRM(store) as crm:
            tell_the_story(crm)


def tell_the_story(crm: CRM) -> None:
    # Marketing imports a suspect: she fits the profile, but has never been in touch.
    grace = crm.register_party(
        kind="person", name="Grace Hopper", organization_name="Compiler Works Ltd",
        profile={"industry": "software", "interests": ["automation"]},
        actor="marketing:import", effective_at=day(0),
    )
    # She fills in a web form: her first interaction makes her a lead.
    crm.engage(grace, channel="web_form", actor="website", effective_at=day(2, 14))

    # Another person writes in by email: registered directly as a lead.
    alan = crm.register_party(
        kind="person", name="Alan Turing", stage="lead", channel="email",
        actor="marketing:eva", effective_at=day(3),
    )

    # Grace fits the market, can afford it and can decide: qualifying her makes her a prospect and
    # registers her company as a target, the prospect linked to it, in one atomic save.
    qualification = crm.qualify(grace, actor="marketing:eva", effective_at=day(7))
    company = qualification.target_id
    assert company is not None  # she named her company, so a target was created
    print(f"qualified {crm.get_party(grace).name}: now a {qualification.stage}, "
          f"belonging to target {crm.get_party(company).name}")

    # Sales takes over: both go to the same rep.
    for party in (grace, company):
        crm.assign(party, owner="rep:marco", actor="sales:head", effective_at=day(8))
    crm.update_profile(grace, changes={"preferred_channel": "phone"}, actor="rep:marco",
                       effective_at=day(9))

    # Alan fails qualification: kept, with the reason.
    crm.disqualify(alan, reason="student project, no budget", actor="marketing:eva", effective_at=day(10))

    # The company buys: the ERP records the order, and the target becomes a customer.
    crm.convert(company, reference="order SO-1042", actor="erp", effective_at=day(24))

    names = {p: crm.get_party(p).name for p in (grace, company, alan)}
    for party in (grace, company, alan):
        view = crm.get_party(party)
        print()
        print(f"== {view.name} ({view.kind}, now {view.stage}) ==")
        for entry in crm.timeline(party):
            print(format_entry(entry, names))
    recorded = crm.timeline(grace)[0].recorded_at
    print()
    print(f"(times above are effective times, when things happened in the business; every event was "
          f"recorded at {recorded:%Y-%m-%d %H:%M} UTC, when this script ran)")

    print()
    print_counts("counts now", crm.party_counts())
    before = day(5)
    print_counts(f"counts as of {before:%Y-%m-%d %H:%M}", crm.party_counts_as_of(before))

    then = crm.party_as_of(grace, before)
    print()
    print(f"Grace as of {before:%Y-%m-%d %H:%M}: stage={then.stage}, owner={then.owner}, "
          f"channel={then.channel}, version={then.version}")
    now = crm.get_party(grace)
    print(f"Grace now: stage={now.stage}, owner={now.owner}, version={now.version}")

    customers = [p.name for p in crm.parties(stage="customer")]
    print(f"customers: {', '.join(customers)}")


#: Fields the timeline shows as "what changed" only when they carry something.
_QUIET = {"id", "registered_at"}


def format_entry(entry: TimelineEntry, names: dict[UUID, str]) -> str:
    """One timeline line: version, effective time, event, actor, and what changed."""
    changed = []
    for field, change in entry.changes.items():
        if field in _QUIET or (change.before is None and change.after in ({}, False)):
            continue
        if field == "profile" and change.before is not None:
            changed.append(f"profile: {profile_diff(change.before, change.after)}")
            continue
        after = show(change.after, names)
        changed.append(f"{field}: {after}" if change.before is None
                       else f"{field}: {show(change.before, names)} -> {after}")
    extra = [f"{key}: {entry.data[key]}" for key in ("reference",) if entry.data.get(key)]
    when = f"{entry.effective_at:%Y-%m-%d %H:%M}"
    return f"  v{entry.version}  {when}  {entry.event:<15} by {entry.actor:<17} {'; '.join(changed + extra)}"


def profile_diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Which traits were set (``+name=value``) and which removed (``-name``)."""
    added = [f"+{k}={show(v, {})}" for k, v in after.items() if before.get(k) != v]
    removed = [f"-{k}" for k in before if k not in after]
    return " ".join(added + removed)


def show(value: Any, names: dict[UUID, str]) -> str:
    """A field value for people: party ids by name, lists comma-separated."""
    if isinstance(value, UUID):
        return names.get(value, str(value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={show(v, names)}" for k, v in value.items()) + "}"
    return str(value)


def print_counts(title: str, counts: PartyCounts) -> None:
    """Counts by stage, kind and owner on three lines."""
    def join(table: dict[Any, int]) -> str:
        return ", ".join(f"{key}={n}" for key, n in table.items()) or "-"

    print(f"{title}: {counts.total} parties")
    print(f"  by stage: {join(counts.by_stage)}")
    print(f"  by kind:  {join(counts.by_kind)}")
    print(f"  by owner: {join(counts.by_owner)}; unassigned={counts.unassigned}")


if __name__ == "__main__":
    main()
