"""``party_identity``: one row per party (not merged away) with what duplicate detection compares."""

from __future__ import annotations

from typing import Any, ClassVar, cast

from eventsourcing.domain import DomainEventProtocol

from crmcore.aggregates.party import LIST_IDENTITY_FIELDS, Party, apply_list_change
from crmcore.projections.base import Row, View

__all__ = ["IDENTITY_ROW_FIELDS", "IdentityView", "MembershipsView"]

#: The identity fields a row copies from the party (as stored).
IDENTITY_ROW_FIELDS = (
    "given_name", "family_name", "emails", "phones", "birth_date", "address", "web_links", "vat_number",
)


class IdentityView(View):
    """Each party's names, contact points, birth date, address, VAT number and web links."""

    name: ClassVar[str] = "party_identity"
    version: ClassVar[int] = 1
    event_classes: ClassVar[tuple[type[Any], ...]] = (
        Party.Registered,
        Party.IdentityUpdated,
        Party.Merged,
        Party.MergedInto,
        Party.Unmerged,
    )


    def evolve(self, row: Row | None, event: DomainEventProtocol[Any]) -> Row | None:
        if isinstance(event, Party.Registered):
            return _row(str(event.originator_id), str(event.kind), event.name, event.organization_name,
                        event.identity)
        if isinstance(event, Party.Unmerged):
            state = event.restored
            if state.get("merged_into"):
                return None
            return _row(str(event.originator_id), str(state["kind"]), state["name"],
                        state.get("organization_name"), state.get("identity", {}))
        if row is None or isinstance(event, Party.MergedInto):
            return None
        new = dict(row)
        changes = cast(dict[str, Any], getattr(event, "changes", None) or getattr(event, "values", {}))
        for field, value in changes.items():
            if field in LIST_IDENTITY_FIELDS:  # additions and removals, in both events
                new[field] = apply_list_change(row.get(field) or [], value)
            elif field == "name":
                new["name"] = value
            elif field == "organization_name" and row["kind"] == "person":
                new["organization_name"] = value
            elif field in IDENTITY_ROW_FIELDS:
                new[field] = value if value is not None else _EMPTY.get(field)
        return new


_EMPTY: dict[str, Any] = {"emails": [], "phones": [], "web_links": []}


def _row(key: str, kind: str, name: str, company: str | None, identity: dict[str, Any]) -> Row:
    row: Row = {"id": key, "kind": kind, "name": name}
    row["organization_name"] = company if kind == "person" else None
    for field in IDENTITY_ROW_FIELDS:
        row[field] = identity.get(field, _EMPTY.get(field))
    return row


class MembershipsView(View):
    """Which organization each person belongs to, kept for merged-away persons too (links are never lost)."""

    name: ClassVar[str] = "memberships"
    version: ClassVar[int] = 1
    event_classes: ClassVar[tuple[type[Any], ...]] = (
        Party.Linked,
        Party.Merged,
        Party.MergedInto,
        Party.Unmerged,
    )


    def evolve(self, row: Row | None, event: DomainEventProtocol[Any]) -> Row | None:
        empty: Row = {"id": str(event.originator_id), "organization_id": None, "merged_into": None}
        new: Row = dict(row) if row is not None else empty
        if isinstance(event, Party.Linked):
            new["organization_id"] = str(event.organization_id)
        elif isinstance(event, Party.Merged):
            if event.values.get("organization_id"):
                new["organization_id"] = str(event.values["organization_id"])
        elif isinstance(event, Party.MergedInto):
            new["merged_into"] = str(event.survivor_id)
        elif isinstance(event, Party.Unmerged):
            organization = event.restored.get("organization_id")
            merged_into = event.restored.get("merged_into")
            new["organization_id"] = str(organization) if organization else None
            new["merged_into"] = str(merged_into) if merged_into else None
        return new if new["organization_id"] is not None else None
