"""``party_facts``: one row per party holding everything a segment criterion, a qualification rule, the
targeting score or the predictive score reads about it — and the join that adds its opportunities.

The view is folded from stored records (fast, shareable between processes, foldable as of any moment). It
reads party events only: stage, kind, owner, name, organization, custom fields and profile, the source
channel, the consent ledger (the entry in force per channel), delivery reports per address and whether the
primary address of each channel may be sent to by the party's own ledger (``ledger_deliverable``), and
interactions (engagements and completed calls and meetings). A party merged into another keeps its row
marked ``merged_into`` (readers leave it out); its survivor takes over what the ``Merged`` event records;
``Unmerged`` restores the recorded state.

``stages`` lists every stay in a stage as ``[stage, since]`` (since: UTC text), oldest first; the last is the
stay in force. A merge keeps the survivor's stays (a stage the merge moves it to begins a stay, remembered
in ``merge_stays`` under the party merged in); an unmerge restores the party's own stays: the stay that merge
began is dropped (with a stay of the same stage following the one before it joined to that one), and the
restored stage begins a stay at the unmerge if it is not the last one's. ``vat_number`` is the party's VAT
number (None: none recorded). The hygiene report measures the average stay in each stage from ``stages``.

Two facts are not folded here but joined on read by :func:`facts_of`, which gives
:class:`crmcore.segments.Facts` rows:

- opportunity facts (open count, won value per currency, wins) from the ``pipeline`` view's rows — an
  opportunity event after ``Opened`` does not name its party;
- ``deliverable``, per channel, from ``ledger_deliverable`` and the suppression decisions recorded about
  the primary addresses (the ``address_decisions`` view) — a decision names an address, not the parties
  that carry it. The rule is :func:`deliverable_of`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, cast

from eventsourcing.utils import get_topic

from crmcore.aggregates.party import Party, apply_list_change
from crmcore.policies.consent import BouncePolicy, undeliverable
from crmcore.policies.suppression import address_key_of
from crmcore.projections.asof import utc_text
from crmcore.projections.base import RecordView, Row
from crmcore.projections.records import StoredRecord
from crmcore.segments import Facts

__all__ = [
    "INTERACTIONS_KEPT", "Opportunity", "PartyFactsView", "deliverable_of", "facts_of", "opportunity_facts",
    "primary_address_keys", "survivor_of",
]

#: How many of a party's latest interaction times a row keeps (engagement saturates long before).
INTERACTIONS_KEPT = 100

#: The channels reached through the primary e-mail address, and through the primary phone number.
_EMAIL_CHANNELS = ("email", "newsletter")
_PHONE_CHANNELS = ("phone", "sms")

_BOUNCES = BouncePolicy()

_Change = Callable[[Row, dict[str, Any], StoredRecord], None]


class PartyFactsView(RecordView):
    """Per party: what criteria read (see the module docstring); rows are JSON-native."""

    name: ClassVar[str] = "party_facts"
    #: 2: bounce policy version 2 (soft bounces counted within a window); 3: ``deliverable`` became
    #: ``ledger_deliverable`` (the recorded suppression decisions are joined on read); 4: ``stages`` (every
    #: stay) and ``vat_number``
    version: ClassVar[int] = 4
    event_classes: ClassVar[tuple[type[Any], ...]] = (
        Party.Registered, Party.Engaged, Party.Qualified, Party.Disqualified, Party.Reopened, Party.Converted,
        Party.Assigned, Party.Linked, Party.ProfileUpdated, Party.SetAside, Party.Restored,
        Party.IdentityUpdated, Party.MergedInto, Party.Merged, Party.Unmerged, Party.InteractionRecorded,
        Party.FieldsUpdated, Party.Subscribed, Party.Unsubscribed, Party.DeliveryRecorded,
    )

    def __init__(self) -> None:
        P = Party  # noqa: N806
        self._registered, self._unmerged = get_topic(P.Registered), get_topic(P.Unmerged)
        self._changes: dict[str, _Change] = {
            get_topic(P.Engaged): _engaged,
            get_topic(P.Qualified): _qualified,
            get_topic(P.Disqualified): _disqualified,
            get_topic(P.Reopened): _reopened,
            get_topic(P.Converted): _converted,
            get_topic(P.Assigned): _assigned,
            get_topic(P.Linked): _linked,
            get_topic(P.ProfileUpdated): _profile_updated,
            get_topic(P.FieldsUpdated): _fields_updated,
            get_topic(P.SetAside): _set_aside,
            get_topic(P.Restored): _restored_from_aside,
            get_topic(P.IdentityUpdated): _identity_updated,
            get_topic(P.MergedInto): _merged_into,
            get_topic(P.Merged): _merged,
            get_topic(P.InteractionRecorded): _interaction,
            get_topic(P.Subscribed): _subscribed,
            get_topic(P.Unsubscribed): _unsubscribed,
            get_topic(P.DeliveryRecorded): _delivery,
        }  # module functions, not lambdas: the view is sent to other processes for shared replay

    def evolve_record(self, row: Row | None, record: StoredRecord) -> Row | None:
        _, originator_id, _, topic, data = record
        if topic == self._registered:
            return _registered(originator_id, data)
        if topic == self._unmerged:
            restored = _restored(originator_id, data["restored"], row, data["effective_at"])
            return _unmerged_stays(restored, row, data)
        if row is None:
            return None
        self._changes[topic](row, data, record)
        return row


def _registered(party_id: str, data: dict[str, Any]) -> Row:
    identity = data.get("identity") or {}
    at = data["effective_at"]
    return {
        "party_id": party_id,
        "kind": data["kind"],
        "stage": data["stage"],
        "stage_since": at,
        "stages": [[data["stage"], utc_text(at)]],
        "name": data["name"],
        "owner": data["owner"],
        "organization_id": None,
        "vat_number": identity.get("vat_number"),
        "set_aside": False,
        "channel": data["channel"],
        "registered_at": at,
        "converted_at": at if data["stage"] == "customer" else None,
        "merged_into": None,
        "fields": {},
        "profile": dict(data["profile"]),
        "emails": list(identity.get("emails", [])),
        "phones": list(identity.get("phones", [])),
        "consent_entries": {},
        "consent": {},
        "reports": {},
        "ledger_deliverable": _ledger_deliverable(identity.get("emails", []), identity.get("phones", []), {}),
        "last_interaction_at": None,
        "interactions": [],
    }


def _stage(row: Row, stage: str, data: dict[str, Any]) -> bool:
    """Move the row to ``stage`` (a new stay) unless it is there already; whether it moved."""
    if row["stage"] == stage:
        return False
    row["stage"], row["stage_since"] = stage, data["effective_at"]
    row["stages"] = [*row["stages"], [stage, utc_text(data["effective_at"])]]  # a new list: rows are shared
    return True


def _engaged(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    _stage(row, "lead", data)
    row["channel"] = data["channel"]
    _interacted(row, data["effective_at"])


def _qualified(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    _stage(row, data["stage"], data)


def _disqualified(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    _stage(row, "disqualified", data)


def _reopened(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    _stage(row, "lead", data)


def _profile_updated(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    _apply(row, "profile", data["changes"])


def _fields_updated(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    _apply(row, "fields", data["changes"])


def _set_aside(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    row["set_aside"] = True


def _restored_from_aside(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    row["set_aside"] = False


def _interaction(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    _interacted(row, data["effective_at"])


def _subscribed(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    _consent(row, "subscribed", data, record)


def _unsubscribed(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    _consent(row, "unsubscribed", data, record)


def _converted(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    _stage(row, "customer", data)
    row["converted_at"] = data["effective_at"]


def _assigned(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    row["owner"] = data["owner"]


def _linked(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    row["organization_id"] = data["organization_id"]


def _apply(row: Row, section: str, changes: Mapping[str, Any]) -> None:
    """Set ``changes`` in the row's ``section`` (a ``None`` removes the key), as a new dict."""
    values = dict(row.get(section) or {})
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    row[section] = values


def _identity_updated(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    changes = data["changes"]
    if "name" in changes:
        row["name"] = changes["name"]
    if "vat_number" in changes:
        row["vat_number"] = changes["vat_number"]
    _addresses_changed(row, changes)


def _addresses_changed(row: Row, changes: Mapping[str, Any]) -> None:
    touched = False
    for key in ("emails", "phones"):
        if key in changes and changes[key] is not None:
            row[key] = apply_list_change(row.get(key) or [], changes[key])
            touched = True
    if touched:
        row["ledger_deliverable"] = _ledger_deliverable(row["emails"], row["phones"], row["reports"])


def _merged_into(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    row["merged_into"] = data["survivor_id"]


def _merged(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    """Take over what the survivor's ``Merged`` records: differences from its own state."""
    values = data["values"]
    if "stage" in values and values["stage"] is not None and _stage(row, values["stage"], data):
        row["merge_stays"] = {**(row.get("merge_stays") or {}), str(data["loser_id"]): row["stages"][-1]}
    for key in ("name", "owner", "channel", "vat_number"):
        if key in values:
            row[key] = values[key]
    if "organization_id" in values:
        row["organization_id"] = values["organization_id"]
    for key, section in (("profile", "profile"), ("custom_fields", "fields")):
        if key in values:
            _apply(row, section, values[key])
    for entry in values.get("consents") or ():
        _add_consent(row, entry["channel"], entry["status"], _ledger_order(entry))
    reports = dict(row["reports"])
    for entry in values.get("deliveries") or ():
        _add_report(reports, entry, _ledger_order(entry))
    row["reports"] = reports
    _addresses_changed(row, {k: values[k] for k in ("emails", "phones") if k in values})
    row["ledger_deliverable"] = _ledger_deliverable(row["emails"], row["phones"], row["reports"])


def _restored(party_id: str, state: dict[str, Any], row: Row | None, at: str) -> Row:
    """The row of a party whose whole recorded state an unmerge restores."""
    identity = state.get("identity") or {}
    restored = _registered(party_id, {
        "identity": identity, "effective_at": at, "kind": state["kind"], "stage": state["stage"],
        "name": state["name"], "owner": state.get("owner"), "channel": state.get("channel"),
        "profile": state.get("profile") or {},
    })
    if row is not None:
        restored["registered_at"] = row["registered_at"]
        restored["converted_at"] = row["converted_at"]
        restored["interactions"] = row["interactions"]
        if row["stage"] == restored["stage"]:
            restored["stage_since"] = row["stage_since"]
    restored["organization_id"] = _text(state.get("organization_id"))
    restored["merged_into"] = _text(state.get("merged_into"))
    restored["set_aside"] = bool(state.get("set_aside"))
    restored["fields"] = dict(state.get("custom_fields") or {})
    for entry in state.get("consents") or ():
        _add_consent(restored, entry["channel"], entry["status"], _ledger_order(entry))
    reports: dict[str, list[Any]] = {}
    for entry in state.get("deliveries") or ():
        _add_report(reports, entry, _ledger_order(entry))
    restored["reports"] = reports
    restored["ledger_deliverable"] = _ledger_deliverable(restored["emails"], restored["phones"], reports)
    last = state.get("last_interaction_at")
    restored["last_interaction_at"] = None if last is None else utc_text(last)
    if row is not None and (row["last_interaction_at"] or "") > (restored["last_interaction_at"] or ""):
        restored["last_interaction_at"] = row["last_interaction_at"]
    return restored


def _unmerged_stays(restored: Row, row: Row | None, data: dict[str, Any]) -> Row:
    """``restored`` (the row an unmerge restores) with its own stays: those of ``row`` without the stay
    the merge with the other party began (a stay then following one of the same stage joins it), and the
    restored stage beginning a stay at the unmerge unless it is the last one's."""
    at = utc_text(data["effective_at"])
    stays: list[list[str]] = []
    if row is not None:
        merge_stays = dict(row.get("merge_stays") or {})
        began = merge_stays.pop(str(data["other_id"]), None)
        for stay in row["stages"]:
            if stay == began:
                began = None  # dropped once
            elif not stays or stays[-1][0] != stay[0]:
                stays.append(list(stay))
        if merge_stays:
            restored["merge_stays"] = merge_stays
    if not stays or stays[-1][0] != restored["stage"]:
        stays.append([restored["stage"], at])
    restored["stages"] = stays
    restored["stage_since"] = stays[-1][1]
    return restored


def _interacted(row: Row, at: str) -> None:
    moment = utc_text(at)
    if moment > (row["last_interaction_at"] or ""):
        row["last_interaction_at"] = moment
    times = [*row["interactions"], moment]
    if len(times) > 1 and moment < times[-2]:
        times.sort()
    row["interactions"] = times[-INTERACTIONS_KEPT:]


def _ledger_order(entry: Mapping[str, Any]) -> list[Any]:
    """A ledger entry's reading order (effective time, recording time, position) as comparable JSON."""
    return [utc_text(entry["effective_at"]), utc_text(entry["recorded_at"]), int(entry["version"])]


def _consent(row: Row, status: str, data: dict[str, Any], record: StoredRecord) -> None:
    order = [utc_text(data["effective_at"]), utc_text(data["timestamp"]), record.version]
    _add_consent(row, data["channel"], status, order)


def _add_consent(row: Row, channel: str, status: str, order: list[Any]) -> None:
    """Keep the entry in force per channel: the latest by effective time, recording time, then position."""
    entries = dict(row["consent_entries"])
    held = entries.get(channel)
    if held is None or order >= held["order"]:
        entries[channel] = {"status": status, "order": order}
        row["consent_entries"] = entries
        row["consent"] = {c: e["status"] for c, e in sorted(entries.items())}


def _delivery(row: Row, data: dict[str, Any], record: StoredRecord) -> None:
    reports = dict(row["reports"])
    _add_report(reports, data, [utc_text(data["effective_at"]), utc_text(data["timestamp"]), record.version])
    row["reports"] = reports
    row["ledger_deliverable"] = _ledger_deliverable(row["emails"], row["phones"], reports)


def _add_report(reports: dict[str, list[Any]], entry: Mapping[str, Any], order: list[Any]) -> None:
    """Add a delivery report under its address (lower-cased), the list kept in reading order."""
    key = str(entry["address"]).lower()
    listed = [*reports.get(key, []), {"outcome": entry["outcome"], "raw_code": entry.get("raw_code"),
                                      "order": order}]
    listed.sort(key=lambda e: e["order"])
    reports[key] = listed


def _ledger_deliverable(
    emails: list[str], phones: list[str], reports: Mapping[str, list[Any]],
) -> dict[str, bool]:
    """Per channel, whether its primary address exists and has not bounced by the party's own delivery
    ledger (default bounce policy)."""
    result: dict[str, bool] = {}
    for channels, addresses in ((_EMAIL_CHANNELS, emails), (_PHONE_CHANNELS, phones)):
        ok = False
        if addresses:
            ok = not undeliverable(reports.get(addresses[0].lower(), ()), _BOUNCES)
        for channel in channels:
            result[channel] = ok
    return result


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------------------- the join


def primary_address_keys(row: Mapping[str, Any]) -> list[str]:
    """The matching keys of a ``party_facts`` row's primary e-mail address and primary phone number (those
    it has), as the suppression decisions know them (:func:`~crmcore.policies.suppression.address_key_of`)."""
    return [address_key_of(addresses[0]) for addresses in (row.get("emails"), row.get("phones")) if addresses]


def deliverable_of(row: Mapping[str, Any], suppressed: Callable[[str], bool | None]) -> dict[str, bool]:
    """Per channel, whether the party of a ``party_facts`` row may be sent to at its primary address.

    ``suppressed(address_key)`` says what the recorded decision in force about an address says: True
    (suppressed), False (reinstated), or None (no decision in force). The rule, per channel:

    - no primary address of the channel's kind: not deliverable;
    - a decision in force about the primary address decides - a suppression makes it undeliverable, a
      reinstatement deliverable, whatever the party's ledger says (the decisions are the bounce policy's
      reading of every report on the address, the ledger's included, under the policy the CRM applies);
    - with none, the party's own delivery ledger under the default bounce policy decides
      (``ledger_deliverable``): a store not yet read by the engagement policy process, or a report whose
      decision is not recorded yet.
    """
    ledger = row.get("ledger_deliverable") or {}
    result: dict[str, bool] = {}
    for channels, addresses in ((_EMAIL_CHANNELS, row.get("emails")), (_PHONE_CHANNELS, row.get("phones"))):
        decided = suppressed(address_key_of(addresses[0])) if addresses else None
        for channel in channels:
            if not addresses:
                result[channel] = False
            elif decided is not None:
                result[channel] = not decided
            else:
                result[channel] = bool(ledger.get(channel, False))
    return result


def facts_of(
    facts_rows: Iterable[Row], pipeline_rows: Iterable[Row], suppressed: Mapping[str, bool],
) -> dict[str, Facts]:
    """Each live party's :class:`~crmcore.segments.Facts`: its ``party_facts`` row joined with its
    opportunities from ``pipeline`` rows (see :func:`opportunity_facts`) and with the suppression decisions
    in force: ``suppressed`` maps the key of every address with a decision in force to whether it
    suppresses (``deliverable``, see :func:`deliverable_of`).

    The opportunities of a party merged away count for its survivor (followed through chains of merges).
    """
    all_rows = {r["party_id"]: r for r in facts_rows}
    owned: dict[str, list[Opportunity]] = {}
    for row in pipeline_rows:
        survivor = survivor_of(row["party_id"], all_rows.get)
        owned.setdefault(survivor, []).append(
            (row["status"], row["amount"], row["currency"], row["closed_at"]))
    decided = suppressed.get
    return {
        party_id: cast(Facts, {**row, **opportunity_facts(owned.get(party_id, ())),
                               "deliverable": deliverable_of(row, decided)})
        for party_id, row in all_rows.items() if row.get("merged_into") is None
    }


#: What the facts read of one opportunity: status (open, won, lost), amount (decimal text), currency and
#: the effective time it closed (None while open).
Opportunity = tuple[str, str, str, "str | None"]


def opportunity_facts(opportunities: Iterable[Opportunity]) -> dict[str, Any]:
    """A party's opportunity facts: ``open_opportunities``; ``won_value`` per currency (exact decimal text);
    ``wins``, each ``[closed_at (UTC text), amount, currency]`` in time order; ``last_won_at``."""
    open_count = 0
    sums: dict[str, Decimal] = {}
    wins: list[list[str]] = []
    for status, amount, currency, closed_at in opportunities:
        if status == "open":
            open_count += 1
        elif status == "won" and closed_at is not None:
            sums[currency] = sums.get(currency, Decimal(0)) + Decimal(amount)
            wins.append([utc_text(closed_at), amount, currency])
    wins.sort()
    return {
        "open_opportunities": open_count,
        "won_value": {c: str(v) for c, v in sorted(sums.items())},
        "wins": wins,
        "last_won_at": wins[-1][0] if wins else None,
    }


def survivor_of(party_id: str, row_of: Callable[[str], Row | None]) -> str:
    """The party standing for ``party_id``: itself, or the survivor its merges lead to."""
    seen: set[str] = set()
    current = party_id
    while (row := row_of(current)) is not None and row.get("merged_into") and current not in seen:
        seen.add(current)
        current = str(row["merged_into"])
    return current
