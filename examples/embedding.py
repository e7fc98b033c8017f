"""Embedding crmcore in a host application: a live screen, a safe edit form, and a change feed.

The host creates one ``CRM`` for its process and keeps it open. This script plays three parts of a
host application:

* a **screen** that shows what happens, refreshed by ``subscribe`` after every commit made in this process;
* an **edit form** that submits with ``expected_version``, so it never overwrites a change the user has
  not seen, and that shows validation errors next to their fields;
* a **feed reader** that polls ``changes(after=position)`` to see what *other processes* wrote (here a
  second ``CRM`` on the same SQLite file stands in for a background worker).

It also prints the JSON schema a frontend can generate its types from. Run: ``python examples/embedding.py``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

from crmcore import CRM, Change, ConcurrentUpdateError, InvalidInput, PartyView


class Screen:
    """A stand-in for a UI: it redraws the rows that changed, and remembers how far it has seen."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.position = crm.position  # everything up to here is already on screen

    def on_changes(self, changes: Sequence[Change]) -> None:
        """Called by ``subscribe`` right after each commit made through this process's CRM."""
        for change in changes:
            self.show(change, source="subscribe")

    def poll(self) -> int:
        """Read what was committed since we last looked, by any process. Returns how many changes."""
        seen = 0
        for change in self.crm.changes(after=self.position):
            self.show(change, source="poll")
            seen += 1
        return seen

    def show(self, change: Change, *, source: str) -> None:
        if change.position <= self.position:
            return  # already shown (a poll after subscribe sees the same changes again)
        self.position = change.position
        name = self.crm.get_party(change.aggregate_id).name
        data = {k: v for k, v in change.data.items() if v not in (None, {}, [])}
        print(f"  [screen via {source}] #{change.position} {name}: {change.event} "
              f"v{change.version} by {change.actor} {json.dumps(data, default=str)}")


def submit_form(crm: CRM, party_id: UUID, loaded: PartyView, form: dict[str, object]) -> PartyView | None:
    """Save an edit form opened on ``loaded``; refuse if the party changed since it was loaded."""
    try:
        return crm.assign(party_id, owner=form["owner"], actor="user:anna", expected_version=loaded.version)
    except ConcurrentUpdateError:
        print(f"  [form] someone changed this party after you opened it (you had v{loaded.version}, "
              f"it is now v{crm.get_party(party_id).version}): reload and check before saving")
    except InvalidInput as error:
        for problem in error.errors:
            field = ".".join(str(part) for part in problem["loc"])
            print(f"  [form] {field}: {problem['msg']}")
    return None


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="crmcore-embedding-") as tmp:
        store = f"sqlite:///{Path(tmp) / 'app.db'}"
        with CRM(store) as crm, CRM(store) as worker:
            run(crm, worker)


def run(crm: CRM, worker: CRM) -> None:
    screen = Screen(crm)
    unsubscribe = crm.subscribe(screen.on_changes)

    print("1. the screen follows commits made in this process")
    acme = crm.register_party(kind="organization", name="Acme Corp", contact_name="Wile E.",
                              actor="user:anna")
    crm.engage(acme, channel="phone", actor="user:anna")

    print("2. an edit form saves with expected_version")
    opened = crm.get_party(acme)  # the form shows version `opened.version`
    crm.assign(acme, owner="rep:luca", actor="user:piero")  # a colleague saves first
    submit_form(crm, acme, opened, {"owner": "rep:marta"})  # refused: nothing is overwritten
    submit_form(crm, acme, crm.get_party(acme), {"owner": ""})  # refused: the field is invalid
    saved = submit_form(crm, acme, crm.get_party(acme), {"owner": "rep:marta"})  # reloaded: accepted
    assert saved is not None
    print(f"  [form] saved: owner={saved.owner}, v{saved.version}")

    print("3. another process writes; subscribe does not see it, polling changes() does")
    qualification = worker.qualify(acme, actor="worker:scoring")
    assert qualification.prospect_id is not None  # Acme named a contact: a prospect was created
    print(f"  [worker] qualified {crm.get_party(acme).name} -> {qualification.stage}, "
          f"with prospect {crm.get_party(qualification.prospect_id).name}")
    print(f"  [screen] {screen.poll()} new changes from other processes")
    print(f"  [screen] nothing new: {screen.poll()} changes")

    print("4. reads for the frontend, as JSON with a schema")
    for row in crm.parties(owner="rep:marta"):
        print(f"  [list] {row.model_dump_json()}")
    schema = PartyView.model_json_schema()
    print(f"  [schema] {schema['title']}: {len(schema['properties'])} properties, "
          f"required {', '.join(schema['required'][:4])}, ...")

    print("5. after unsubscribe the screen is told nothing, until it polls")
    unsubscribe()
    crm.set_aside(acme, reason="moved to the newsletter list", actor="user:anna")
    print(f"  [screen] {screen.poll()} new change")


if __name__ == "__main__":
    main()
