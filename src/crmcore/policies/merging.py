"""How two duplicate parties merge, field by field (pure; the application records the result).

Every field takes the survivor's value unless the caller chooses the loser's, or the survivor has none.
Lists (e-mail addresses, phone numbers, web links) are joined by default, the survivor's first and
without repeats; profile traits and custom field values are joined too, the survivor's value winning one
both have. The stage is
the one further along the lifecycle (a customer stays a customer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from crmcore.exceptions import InvalidInput
from crmcore.values import Stage

__all__ = ["LIST_FIELDS", "MERGEABLE_FIELDS", "Choice", "PlannedField", "plan_merge", "recorded_changes"]

Choice = Literal["survivor", "loser", "both"]
#: A planned field: (name, survivor's value, loser's value, result, where the result comes from).
PlannedField = tuple[str, Any, Any, Any, Choice]

#: Fields a merge joins (survivor's items first) unless told to take one side.
LIST_FIELDS = ("emails", "phones", "web_links")
_DICT_FIELDS = ("profile", "custom_fields")
_SCALAR_FIELDS = (
    "name", "given_name", "family_name", "birth_date", "address", "vat_number", "organization_name",
    "contact_name", "owner", "channel", "organization_id", "stage",
)
#: Every field a merge decides, in the order a plan lists them.
MERGEABLE_FIELDS = (*_SCALAR_FIELDS[:7], *LIST_FIELDS, *_SCALAR_FIELDS[7:], *_DICT_FIELDS)

# How far along the lifecycle each stage is (a merge keeps the further one).
_PROGRESS = {
    Stage.DISQUALIFIED: 0, Stage.SUSPECT: 1, Stage.LEAD: 2, Stage.PROSPECT: 3, Stage.TARGET: 3,
    Stage.CUSTOMER: 4,
}


def plan_merge(
    survivor: Mapping[str, Any], loser: Mapping[str, Any], choose: Mapping[str, Choice] | None = None,
) -> list[PlannedField]:
    """Each mergeable field's value in the survivor, in the loser, and merged (``choose`` overrides).

    ``survivor`` and ``loser`` map field names to plain values (as ``Party.merge_fields`` gives them).
    Raises :class:`InvalidInput` for an unknown field or choice.
    """
    choose = dict(choose or {})
    unknown = sorted(set(choose) - set(MERGEABLE_FIELDS))
    if unknown:
        raise InvalidInput(
            f"choose: unknown field(s) {', '.join(unknown)}; mergeable: {', '.join(MERGEABLE_FIELDS)}",
            [{"loc": ("choose", f), "msg": "not mergeable", "type": "unknown_field"} for f in unknown],
        )
    for field, given in choose.items():
        joinable = field in (*LIST_FIELDS, *_DICT_FIELDS)
        allowed = ("survivor", "loser", "both") if joinable else ("survivor", "loser")
        if given not in allowed:
            raise InvalidInput(
                f"choose: {field} takes one of {', '.join(allowed)}, not {given!r}",
                [{"loc": ("choose", field), "msg": f"one of {', '.join(allowed)}", "type": "choice"}],
            )
    planned: list[PlannedField] = []
    for field in MERGEABLE_FIELDS:
        ours, theirs = survivor.get(field), loser.get(field)
        choice = choose.get(field)
        result: Any
        source: Choice
        if field in LIST_FIELDS:
            result, source = _join_lists(list(ours or []), list(theirs or []), choice)
        elif field in _DICT_FIELDS:
            result, source = _join_dicts(dict(ours or {}), dict(theirs or {}), choice)
        elif field == "stage" and choice is None:
            further = _PROGRESS[Stage(str(theirs))] > _PROGRESS[Stage(str(ours))]
            result, source = (theirs, "loser") if further else (ours, "survivor")
        elif choice == "loser" or (choice is None and ours in (None, "") and theirs not in (None, "")):
            result, source = theirs, "loser"
        else:
            result, source = ours, "survivor"
        planned.append((field, ours, theirs, result, source))
    return planned


def _join_lists(ours: list[Any], theirs: list[Any], choice: Choice | None) -> tuple[list[Any], Choice]:
    if choice == "survivor":
        return ours, "survivor"
    if choice == "loser":
        return theirs, "loser"
    joined = list(ours)
    seen = {_key(v) for v in ours}
    for value in theirs:
        if _key(value) not in seen:
            seen.add(_key(value))
            joined.append(value)
    if len(joined) == len(ours):
        return joined, "survivor"
    return joined, ("both" if ours else "loser")


def _join_dicts(
    ours: dict[str, Any], theirs: dict[str, Any], choice: Choice | None
) -> tuple[dict[str, Any], Choice]:
    if choice == "survivor":
        return ours, "survivor"
    if choice == "loser":
        return theirs, "loser"
    joined = {**theirs, **ours}
    if joined == ours:
        return joined, "survivor"
    return joined, ("both" if ours else "loser")


def _key(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def recorded_changes(
    planned: list[PlannedField],
    *,
    loser_versions: Mapping[str, int],
    loser_consents: list[Any],
    loser_deliveries: list[Any],
) -> dict[str, Any]:
    """What ``Party.Merged`` records: each change as a difference from the survivor, never a whole value.

    Lists become additions and removals (``list_change``), the profile and custom fields the keys set
    (``None``: removed), the ledgers the loser's entries appended. Replaying the survivor without an
    earlier merge then leaves out exactly what that merge brought, even through later merges.
    """
    from crmcore.aggregates.party import list_change

    changes: dict[str, Any] = {}
    for field, ours, _, result, _ in planned:
        if result == ours:
            continue
        if field in LIST_FIELDS:
            change = list_change(list(ours or []), list(result or []))
            if change is not None:
                changes[field] = change
        elif field in _DICT_FIELDS:
            mine, merged = dict(ours or {}), dict(result or {})
            delta = {k: v for k, v in merged.items() if k not in mine or mine[k] != v}
            delta.update({k: None for k in mine if k not in merged})
            changes[field] = delta
        else:
            changes[field] = result
    if "custom_fields" in changes:  # a value taken from the loser keeps its catalog version
        changes["custom_field_versions"] = {
            k: None if v is None else loser_versions.get(k) for k, v in changes["custom_fields"].items()
        }
    # The ledgers are always joined: no consent or delivery report is lost by a merge.
    if loser_consents:
        changes["consents"] = list(loser_consents)
    if loser_deliveries:
        changes["deliveries"] = list(loser_deliveries)
    return changes
