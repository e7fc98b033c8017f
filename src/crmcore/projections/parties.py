"""``parties``: one row per party with its kind, stage and owner — the first view."""

from __future__ import annotations

from typing import Any, ClassVar, cast

from eventsourcing.domain import DomainEventProtocol

from crmcore.aggregates.party import Party
from crmcore.projections.base import Row, View

__all__ = ["PartiesView"]


class PartiesView(View):
    """Parties by stage, kind and owner. A party merged into another leaves the view (until unmerged)."""
    """Parties by stage, kind and owner, with their profile and custom field values (read by field scans)."""

    name: ClassVar[str] = "parties"
    version: ClassVar[int] = 3
    event_classes: ClassVar[tuple[type[Any], ...]] = (
        Party.Registered,
        Party.Engaged,
        Party.Qualified,
        Party.Disqualified,
        Party.Reopened,
        Party.Converted,
        Party.Assigned,
        Party.Linked,
        Party.SetAside,
        Party.Restored,
        Party.IdentityUpdated,
        Party.MergedInto,
        Party.Merged,
        Party.Unmerged,
        Party.ProfileUpdated,
        Party.FieldsUpdated,
    )


    def evolve(self, row: Row | None, event: DomainEventProtocol[Any]) -> Row | None:
        if isinstance(event, Party.Registered):
            return {
                "id": str(event.originator_id),
                "kind": str(event.kind),
                "stage": str(event.stage),
                "name": event.name,
                "owner": event.owner,
                "organization_id": None,
                "set_aside": False,
                "since": event.effective_at.isoformat(),
                "profile": dict(event.profile),
                "custom_fields": {},
            }
        if isinstance(event, Party.Unmerged):
            at = event.effective_at.isoformat()
            return _row_of_state(str(event.originator_id), event.restored, row, at)
        if row is None:  # a party this view never saw registered, or merged away: nothing to show
            return None
        if isinstance(event, Party.MergedInto):
            return None
        new = dict(row)
        if isinstance(event, Party.Engaged):
            new["stage"] = "lead"
        elif isinstance(event, Party.Qualified):
            new["stage"] = str(event.stage)
        elif isinstance(event, Party.Disqualified):
            new["stage"] = "disqualified"
        elif isinstance(event, Party.Reopened):
            new["stage"] = "lead"
        elif isinstance(event, Party.Converted):
            new["stage"] = "customer"
        elif isinstance(event, Party.Assigned):
            new["owner"] = event.owner
        elif isinstance(event, Party.Linked):
            new["organization_id"] = str(event.organization_id)
        elif isinstance(event, Party.SetAside):
            new["set_aside"] = True
        elif isinstance(event, Party.Restored):
            new["set_aside"] = False
        elif isinstance(event, Party.IdentityUpdated):
            new["name"] = _renamed(event.changes, row["name"])
        elif isinstance(event, Party.Merged):
            for field in ("name", "owner", "stage"):
                if field in event.values:
                    new[field] = event.values[field]
            for field in ("profile", "custom_fields"):  # differences, as Party.Merged records them
                if field in event.values:
                    new[field] = _apply(row.get(field) or {}, event.values[field])
            if "organization_id" in event.values:
                organization = event.values["organization_id"]
                new["organization_id"] = str(organization) if organization else None
        elif isinstance(event, Party.ProfileUpdated):
            new["profile"] = _apply(row.get("profile") or {}, event.changes)
        elif isinstance(event, Party.FieldsUpdated):
            new["custom_fields"] = _apply(row.get("custom_fields") or {}, event.changes)
        if new.get("stage") != row.get("stage"):
            new["since"] = cast(Party.Event, event).effective_at.isoformat()
        return new


def _renamed(changes: dict[str, Any], name: str) -> str:
    return str(changes["name"]) if "name" in changes else name


def _row_of_state(key: str, state: dict[str, Any], row: Row | None, at: str) -> Row | None:
    """The row of a party whose whole state an event restores (None while it is merged away)."""
    if state.get("merged_into"):
        return None
    stage = str(state["stage"])
    organization = state.get("organization_id")
    return {
        "id": key,
        "kind": str(state["kind"]),
        "stage": stage,
        "name": state["name"],
        "owner": state.get("owner"),
        "organization_id": str(organization) if organization else None,
        "set_aside": bool(state.get("set_aside")),
        "since": row["since"] if row is not None and row.get("stage") == stage else at,
        "profile": dict(state.get("profile") or {}),
        "custom_fields": dict(state.get("custom_fields") or {}),
    }
def _apply(values: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``values`` with ``changes`` set (a ``None`` removes the key), as a new dict."""
    result = dict(values)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result
