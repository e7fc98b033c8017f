"""Loading many aggregates at once (the clean-up's bulk path) gives exactly what the repository gives one
at a time, on every store: from a snapshot and the events after it, across chunks, leaving out unknown ids."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from crmcore import CRM
from crmcore._loading import load_many


def state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def test_many_aggregates_load_as_the_repository_loads_each(crm: CRM) -> None:
    busy = crm.register_party(kind="person", name="Busy", actor="u", emails=["busy@example.com"])
    for turn in range(130):  # past the snapshot interval (100)
        crm.assign(busy, owner=f"rep-{turn % 3}", actor="u")
    quiet = crm.register_party(kind="person", name="Quiet", actor="u")
    twin = crm.register_party(kind="person", name="Twin", actor="u")
    crm.merge(quiet, twin, actor="u", reason="same")
    task = crm.plan_task(kind="call", subject="Call back", assignees=["ann"], actor="ann", party_id=quiet,
                         deadline="2030-01-31")
    crm.record_delivery(busy, address="busy@example.com", outcome="hard_bounce", actor="mailer")
    statuses = [s for s in crm._app.recorder.select_notifications(start=1, limit=10_000)
                if s.topic.endswith("AddressStatus.Tracked")]
    assert statuses
    assert crm._app.snapshots is not None
    assert list(crm._app.snapshots.get(busy))  # loaded from its snapshot, then the events after it
    ids = [busy, quiet, twin, task, uuid4(), *(s.originator_id for s in statuses)]
    for chunk_size in (1, 2, 500):
        loaded = load_many(crm._app, [*ids, busy], chunk_size=chunk_size)
        assert set(loaded) == set(ids) - {ids[4]}
        for found, aggregate in loaded.items():
            assert state(aggregate) == state(crm._app.repository.get(found))
    assert load_many(crm._app, []) == {}
    assert isinstance(next(iter(load_many(crm._app, [busy]))), UUID)
