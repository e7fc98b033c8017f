"""Campaign read models: what each recipient of each campaign did, each party's engagement, each campaign.

- ``campaign_recipients`` (:class:`CampaignRecipientsView`), one row per campaign and recipient (key
  ``"<campaign_id>:<party_id>"``), folded from every engagement report: per kind of report the first and
  last effective time and how many; the links clicked; calls per outcome and per operator, the last call;
  the first call that touched the party (reached, interested, call back).
- ``party_engagement`` (:class:`PartyEngagementView`), one row per party: the evidence of delivery (first
  and last), the last open, click, bounce and call, counts of each, the moment each campaign first touched
  the party (what attribution reads), and whether the party was merged into another (what the engagement
  policy and attribution follow to the survivor).
- ``campaigns`` (:class:`CampaignsView`), one row per campaign: its settings, status and times, cost,
  how many recipients per channel, exclusions per channel and reason, how many were sent and in how many
  waves, skips per reason. Recipient lists stay in the campaign's events, never in the row.

The first two folds are **commutative**: every field is a minimum, a maximum, a count or a set (a "last"
call is the greatest by effective time, then report id), so any order of the same reports gives the same
row, and rows of one key folded apart can be put together (:meth:`~RecordView.combine`): both views are
folded share by share on several processes like the views keyed by aggregate. Times are compared as UTC
ISO text (see :func:`~crmcore.projections.asof.utc_text`), never parsed.

"Delivery evidence" in ``party_engagement``: a delivery, an open or a click, an unsubscribe from a
newsletter or a spam complaint — each proves the mail arrived — so ``first_delivery`` / ``last_delivery``
are the first and last of those, while ``deliveries`` counts the delivery reports alone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from eventsourcing.utils import get_topic

from crmcore.aggregates.campaign import CAMPAIGN_EVENTS, Campaign
from crmcore.aggregates.engagement import ENGAGEMENT_EVENTS, EVENT_OF_KIND, KIND_OF_EVENT
from crmcore.aggregates.party import Party
from crmcore.projections.asof import utc_text
from crmcore.projections.base import RecordView, Row
from crmcore.projections.facts import survivor_of
from crmcore.projections.records import StoredRecord
from crmcore.values import CallOutcome, CampaignChannel, CampaignStatus, EngagementKind

__all__ = [
    "FACT_KINDS",
    "TOUCHING_OUTCOMES",
    "UNSUBSCRIBED_BY_PHONE",
    "CampaignRecipientsView",
    "CampaignsView",
    "PartyEngagementView",
    "engagement_by_survivor",
    "recipient_key",
]

#: An unsubscribe reported on the telemarketing channel: kept apart, as only the newsletter's proves a
#: delivery.
UNSUBSCRIBED_BY_PHONE = "unsubscribed_by_phone"

#: The kinds a ``campaign_recipients`` row keeps times and counts for: each report kind, and
#: :data:`UNSUBSCRIBED_BY_PHONE`.
FACT_KINDS: tuple[str, ...] = (*(k.value for k in EngagementKind), UNSUBSCRIBED_BY_PHONE)

#: Call outcomes at which a campaign touches the party (attribution).
TOUCHING_OUTCOMES = frozenset({CallOutcome.REACHED.value, CallOutcome.INTERESTED.value,
                               CallOutcome.CALL_BACK.value})

_UTC = "+00:00"
_NEWSLETTER = CampaignChannel.NEWSLETTER.value
_CALLED = EngagementKind.CALLED.value
_CLICKED = EngagementKind.CLICKED.value
_OPENED = EngagementKind.OPENED.value
_UNSUBSCRIBED = EngagementKind.UNSUBSCRIBED.value
_DELIVERED = EngagementKind.DELIVERED.value

#: The kinds that prove a newsletter was delivered (with ``unsubscribed`` only on the newsletter channel).
_DELIVERY_EVIDENCE = frozenset({EngagementKind.DELIVERED.value, _OPENED, _CLICKED, _UNSUBSCRIBED,
                                EngagementKind.COMPLAINT.value})
_BOUNCES = frozenset({EngagementKind.SOFT_BOUNCE.value, EngagementKind.HARD_BOUNCE.value})


def recipient_key(campaign_id: str, party_id: str) -> str:
    """The key of a ``campaign_recipients`` row."""
    return f"{campaign_id}:{party_id}"


def _moment(data: dict[str, Any]) -> str:
    """The record's effective time as UTC text (stored times mostly are already)."""
    at: str = data["effective_at"]
    return at if at.endswith(_UTC) else utc_text(at)


class _Ids(dict[str, str]):
    """Ids as the rows hold them (``str(UUID)``'s text), from a record decoded or only parsed (skimmed:
    ``{"_type_": "uuid_hex", "_data_": <32 hex digits>}``, an originator id as the store gives it);
    remembered, as a recipient's ids come back in each of its reports."""

    def __reduce__(self) -> tuple[Any, ...]:
        return _Ids, ()  # a view sent to another process starts with none remembered

    def text(self, value: Any) -> str:
        if type(value) is dict:
            value = value["_data_"]
        held = self.get(value)
        if held is None:
            if len(self) >= 1_000_000:
                self.clear()
            held = self[value] = _hyphenated(value) if len(value) == 32 else value
        return held


def _hyphenated(hex_: str) -> str:
    """A UUID's 32 hex digits (any case) as ``str(UUID)`` writes them."""
    hex_ = hex_.lower()
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"


def _earlier(a: str | None, b: str | None) -> str | None:
    return b if a is None or (b is not None and b < a) else a


def _later(a: str | None, b: str | None) -> str | None:
    return b if a is None or (b is not None and b > a) else a


def _added_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    total = dict(a)
    for key, count in b.items():
        total[key] = total.get(key, 0) + count
    return dict(sorted(total.items()))


# ---------------------------------------------------------------------------------- campaign_recipients


class CampaignRecipientsView(RecordView):
    """Per campaign and recipient, what the engagement reports say (see the module docstring).

    Fields: ``campaign_id``, ``party_id``; for each of :data:`FACT_KINDS` some report was of,
    ``<kind>: [first, last, count]`` (effective times as UTC text); once a link was clicked, ``links``
    (sorted, distinct); once called, ``call_outcomes`` (outcome -> calls), ``operator_calls`` (operator ->
    outcome -> calls) and ``last_call`` (``[at, report id, outcome, operator, call back on]`` of the latest
    call); once a call reached the party (reached, interested, call back), ``touch_call_first``, the first
    such. A field nothing filled is absent: rows stay small, so a rebuild writes little.
    """

    name: ClassVar[str] = "campaign_recipients"
    version: ClassVar[int] = 3
    #: Stored in buckets of a campaign's recipients by the last two hex digits of their id (up to 256 per
    #: campaign): results read a campaign whole, and a rebuild writes hundreds of rows, not one per recipient.
    packed_rows: ClassVar[int] = 2
    event_classes: ClassVar[tuple[type[Any], ...]] = ENGAGEMENT_EVENTS
    #: Reports are only parsed on catch-up: the fold reads plain fields, two ids and the effective time.
    skimmed_topics: ClassVar[frozenset[str]] = frozenset(get_topic(cls) for cls in ENGAGEMENT_EVENTS)

    def __init__(self) -> None:
        self._kinds = {get_topic(cls): kind.value for cls, kind in KIND_OF_EVENT.items()}
        self._unsubscribed = get_topic(EVENT_OF_KIND[EngagementKind.UNSUBSCRIBED])
        self._clicked = get_topic(EVENT_OF_KIND[EngagementKind.CLICKED])
        self._called = get_topic(EVENT_OF_KIND[EngagementKind.CALLED])
        self._ids = _Ids()

    def record_key(self, record: StoredRecord) -> str:
        data = record[4]
        campaign, party = data["campaign_id"], data["party_id"]
        if type(campaign) is dict:  # a skimmed record: {"_type_": "uuid_hex", "_data_": <32 hex digits>}
            campaign, party = campaign["_data_"], party["_data_"]
        ids = self._ids
        return f"{ids.get(campaign) or ids.text(campaign)}:{ids.get(party) or ids.text(party)}"

    def evolve_record(self, row: Row | None, record: StoredRecord) -> Row | None:
        key = self.record_key(record)
        rows = {} if row is None else {key: row}
        self.evolve_page((record,), rows)
        return rows.get(key)

    def evolve_page(self, records: Iterable[StoredRecord], rows: dict[str, Row]) -> None:
        """The fold, one loop over a page (a rebuild's hot path; :meth:`evolve_record` runs it on one)."""
        kinds, ids, get = self._kinds, self._ids, rows.get
        text, held_id = ids.text, ids.get
        unsubscribed, clicked, called = self._unsubscribed, self._clicked, self._called
        for record in records:
            topic, data = record[3], record[4]
            kind = kinds.get(topic)
            if kind is None:
                continue
            campaign, party, at = data["campaign_id"], data["party_id"], data["effective_at"]
            if type(campaign) is dict:  # skimmed: {"_type_": "uuid_hex", "_data_": <32 hex digits>}
                campaign, party = campaign["_data_"], party["_data_"]
            if type(at) is dict:  # skimmed: {"_type_": "datetime_iso", "_data_": <ISO text>}
                at = at["_data_"]
            if not at.endswith(_UTC):
                at = utc_text(at)
            campaign = held_id(campaign) or text(campaign)
            party = held_id(party) or text(party)
            key = f"{campaign}:{party}"
            row = get(key)
            if row is None:
                row = rows[key] = {"campaign_id": campaign, "party_id": party}
            if topic == unsubscribed and data["channel"] != _NEWSLETTER:
                kind = UNSUBSCRIBED_BY_PHONE
            held = row.get(kind)
            if held is None:
                row[kind] = [at, at, 1]
            else:
                first, last, count = held
                row[kind] = [at if at < first else first, at if at > last else last, count + 1]
            if topic == clicked:
                link = data["link"]
                links = row.get("links", ())
                if link is not None and link not in links:
                    row["links"] = sorted([*links, link])
            elif topic == called:
                _call(row, data, at, text(record[1]))

    def combine(self, first: Row, second: Row) -> Row:
        row = {**first, **second}
        for kind in FACT_KINDS:
            mine, theirs = first.get(kind), second.get(kind)
            if mine is not None and theirs is not None:
                row[kind] = [min(mine[0], theirs[0]), max(mine[1], theirs[1]), mine[2] + theirs[2]]
        if "links" in first and "links" in second:
            row["links"] = sorted(set(first["links"]) | set(second["links"]))
        if "call_outcomes" in first and "call_outcomes" in second:
            row["call_outcomes"] = _added_counts(first["call_outcomes"], second["call_outcomes"])
            operators = dict(first["operator_calls"])
            for operator, outcomes in second["operator_calls"].items():
                operators[operator] = _added_counts(operators.get(operator, {}), outcomes)
            row["operator_calls"] = dict(sorted(operators.items()))
            row["last_call"] = max(first["last_call"], second["last_call"])
        if "touch_call_first" in first and "touch_call_first" in second:
            row["touch_call_first"] = min(first["touch_call_first"], second["touch_call_first"])
        return row


def _call(row: Row, data: dict[str, Any], at: str, report_id: str) -> None:
    """Count a call under its outcome and operator; keep the latest; note the first that touched."""
    outcome, operator = data["outcome"], data["operator"]
    row["call_outcomes"] = _added_counts(row.get("call_outcomes", {}), {outcome: 1})
    operators = dict(row.get("operator_calls", {}))
    operators[operator] = _added_counts(operators.get(operator, {}), {outcome: 1})
    row["operator_calls"] = dict(sorted(operators.items()))
    call = [at, report_id, outcome, operator, data.get("call_back_on")]
    if "last_call" not in row or call > row["last_call"]:
        row["last_call"] = call
    if outcome in TOUCHING_OUTCOMES:
        row["touch_call_first"] = _earlier(row.get("touch_call_first"), at)


# ------------------------------------------------------------------------------------- party_engagement


class PartyEngagementView(RecordView):
    """Per party, its engagement across campaigns (see the module docstring).

    Fields, each absent until something fills it: ``first_delivery``, ``last_delivery`` (delivery
    evidence) and ``deliveries`` (delivery reports); ``last_open``, ``opens``; ``last_click``, ``clicks``;
    ``last_bounce``, ``bounces`` (soft and hard); ``last_call``, ``calls``; ``touches`` (campaign id -> the
    first open, click or touching call of that campaign); ``merged_into`` (the party it was merged into)
    with ``merged_version`` (the version of the party's event that said so, kept after an unmerge) and
    ``merged`` (True while merged). ``party_id`` is always there.
    """

    name: ClassVar[str] = "party_engagement"
    version: ClassVar[int] = 1
    event_classes: ClassVar[tuple[type[Any], ...]] = (*ENGAGEMENT_EVENTS, Party.MergedInto, Party.Unmerged)
    #: Reports are only parsed on catch-up (the party's own events are decoded).
    skimmed_topics: ClassVar[frozenset[str]] = frozenset(get_topic(cls) for cls in ENGAGEMENT_EVENTS)

    def __init__(self) -> None:
        self._kinds = {get_topic(cls): kind.value for cls, kind in KIND_OF_EVENT.items()}
        self._merged_into = get_topic(Party.MergedInto)
        self._ids = _Ids()

    def record_key(self, record: StoredRecord) -> str:
        party_id = record[4].get("party_id")
        return record[1] if party_id is None else self._ids.text(party_id)

    def evolve_record(self, row: Row | None, record: StoredRecord) -> Row | None:
        _, originator_id, version, topic, data = record
        kind = self._kinds.get(topic)
        if kind is None:  # merged into another party, or unmerged
            row = row or {"party_id": originator_id}
            survivor = (data["survivor_id"] if topic == self._merged_into
                        else data["restored"].get("merged_into"))
            if version > row.get("merged_version", 0):
                _set_merged(row, None if survivor is None else str(survivor), version)
            return row
        text = self._ids.text
        row = row or {"party_id": text(data["party_id"])}
        at = data["effective_at"]
        if type(at) is dict:  # a skimmed record
            at = at["_data_"]
        if not at.endswith(_UTC):
            at = utc_text(at)
        if kind in _DELIVERY_EVIDENCE and (kind != _UNSUBSCRIBED or data["channel"] == _NEWSLETTER):
            _earliest(row, "first_delivery", at)
            _latest(row, "last_delivery", at)
        if kind == _OPENED:
            row["opens"] = row.get("opens", 0) + 1
            _latest(row, "last_open", at)
            _touch(row, text(data["campaign_id"]), at)
        elif kind == _CLICKED:
            row["clicks"] = row.get("clicks", 0) + 1
            _latest(row, "last_click", at)
            _touch(row, text(data["campaign_id"]), at)
        elif kind == _DELIVERED:
            row["deliveries"] = row.get("deliveries", 0) + 1
        elif kind in _BOUNCES:
            row["bounces"] = row.get("bounces", 0) + 1
            _latest(row, "last_bounce", at)
        elif kind == _CALLED:
            row["calls"] = row.get("calls", 0) + 1
            _latest(row, "last_call", at)
            if data["outcome"] in TOUCHING_OUTCOMES:
                _touch(row, text(data["campaign_id"]), at)
        return row

    def combine(self, first: Row, second: Row) -> Row:
        row = {**first, **second}
        for field in _FIRSTS:
            row[field] = _earlier(first.get(field), second.get(field))
        for field in _LASTS:
            row[field] = _later(first.get(field), second.get(field))
        for field in _COUNTS:
            row[field] = first.get(field, 0) + second.get(field, 0)
        touches = dict(first.get("touches", {}))
        for campaign, at in second.get("touches", {}).items():
            touches[campaign] = _earlier(touches.get(campaign), at)
        row["touches"] = dict(sorted(touches.items()))
        held = first if first.get("merged_version", 0) >= second.get("merged_version", 0) else second
        for field in ("merged_into", "merged_version", "merged"):
            row.pop(field, None)
        if "merged_version" in held:
            _set_merged(row, held.get("merged_into"), held["merged_version"])
        return {k: v for k, v in row.items() if v is not None and v != {} and v != 0}


_FIRSTS = ("first_delivery",)
_LASTS = ("last_delivery", "last_open", "last_click", "last_bounce", "last_call")
_COUNTS = ("deliveries", "opens", "clicks", "bounces", "calls")


def _earliest(row: Row, field: str, at: str) -> None:
    held = row.get(field)
    if held is None or at < held:
        row[field] = at


def _latest(row: Row, field: str, at: str) -> None:
    held = row.get(field)
    if held is None or at > held:
        row[field] = at


def _set_merged(row: Row, survivor: str | None, version: int) -> None:
    row["merged_version"] = version
    if survivor is None:
        row.pop("merged_into", None)
        row.pop("merged", None)
    else:
        row["merged_into"], row["merged"] = survivor, True


def _touch(row: Row, campaign: str, at: str) -> None:
    """A touch by ``campaign``: keep its first."""
    touches = row.get("touches", {})
    held = touches.get(campaign)
    if held is None or at < held:
        row["touches"] = dict(sorted({**touches, campaign: at}.items()))


def engagement_by_survivor(
    rows: Iterable[Row], view: PartyEngagementView, only: Collection[str] | None = None,
) -> dict[str, Row]:
    """Each party's engagement with that of the parties merged into it (through chains of merges)
    combined, by the surviving party's id; parties merged away have no entry of their own. With ``only``,
    just those surviving parties."""
    by_id = {row["party_id"]: row for row in rows}
    result: dict[str, Row] = {}
    for party_id, row in by_id.items():
        if only is not None and party_id not in only and "merged_into" not in row:
            continue
        survivor = survivor_of(party_id, by_id.get)
        if only is not None and survivor not in only:
            continue
        mine = {k: v for k, v in row.items() if k not in ("merged_into", "merged_version", "merged")}
        mine["party_id"] = survivor
        held = result.get(survivor)
        result[survivor] = mine if held is None else view.combine(held, mine)
    return result


# ---------------------------------------------------------------------------------------------- campaigns


class CampaignsView(RecordView):
    """One row per campaign (keyed by its id, so folded share by share like any view keyed by aggregate).

    Fields: ``campaign_id``, ``name``, ``description``, ``status``, ``channels``, ``segment_id``,
    ``budget`` (``{"amount", "currency"}``), ``cost`` (decimal text, in the budget's currency),
    ``include_inactive``, ``exclude_open_negotiations``; effective times ``drafted_at``, ``start_at``,
    ``launched_at``, ``audience_at``, ``completed_at``, ``cancelled_at`` and ``last_event_at``;
    ``cancel_reason``; ``recipients`` (channel -> how many), ``exclusions`` (channel -> reason -> how
    many), ``sent`` (how many newsletter recipients were sent), ``waves``, ``skipped`` (reason -> how many
    times a wave skipped someone), ``operators``.
    """

    name: ClassVar[str] = "campaigns"
    version: ClassVar[int] = 1
    event_classes: ClassVar[tuple[type[Any], ...]] = CAMPAIGN_EVENTS

    def __init__(self) -> None:
        C = Campaign  # noqa: N806
        self._drafted = get_topic(C.Drafted)
        self._changes: dict[str, Callable[[Row, dict[str, Any]], None]] = {
            get_topic(C.Revised): _revised,
            get_topic(C.Scheduled): _scheduled,
            get_topic(C.Launched): _launched,
            get_topic(C.Sent): _sent,
            get_topic(C.CostRecorded): _cost_recorded,
            get_topic(C.OperatorsChanged): _operators_changed,
            get_topic(C.Completed): _completed,
            get_topic(C.Cancelled): _cancelled,
        }  # module functions, not lambdas: the view is sent to other processes for shared replay

    def evolve_record(self, row: Row | None, record: StoredRecord) -> Row | None:
        _, originator_id, _, topic, data = record
        at = _moment(data)
        if topic == self._drafted:
            return {
                "campaign_id": originator_id, "name": data["name"], "description": data["description"],
                "status": CampaignStatus.DRAFT.value, "channels": list(data["channels"]),
                "segment_id": data["segment_id"], "budget": dict(data["budget"]),
                "cost": "0", "include_inactive": data["include_inactive"],
                "exclude_open_negotiations": data["exclude_open_negotiations"], "drafted_at": at,
                "start_at": None, "launched_at": None, "audience_at": None, "completed_at": None,
                "cancelled_at": None, "cancel_reason": None, "recipients": {}, "exclusions": {}, "sent": 0,
                "waves": 0, "skipped": {}, "operators": [], "last_event_at": at,
            }
        if row is None:
            return None
        self._changes[topic](row, data)
        row["last_event_at"] = _later(row["last_event_at"], at)
        return row


def _revised(row: Row, data: dict[str, Any]) -> None:
    for key, value in data["changes"].items():
        row[key] = list(value) if key == "channels" else dict(value) if key == "budget" else value


def _scheduled(row: Row, data: dict[str, Any]) -> None:
    row["status"], row["start_at"] = CampaignStatus.SCHEDULED.value, utc_text(data["start_at"])


def _launched(row: Row, data: dict[str, Any]) -> None:
    row["status"] = CampaignStatus.RUNNING.value
    row["launched_at"], row["audience_at"] = _moment(data), utc_text(data["audience_at"])
    row["recipients"] = {channel: len(pairs) for channel, pairs in data["recipients"].items()}
    exclusions: dict[str, dict[str, int]] = {}
    for _, channel, reason, *_ in data["exclusions"]:
        per_channel = exclusions.setdefault(channel, {})
        per_channel[reason] = per_channel.get(reason, 0) + 1
    row["exclusions"] = {c: dict(sorted(r.items())) for c, r in sorted(exclusions.items())}


def _sent(row: Row, data: dict[str, Any]) -> None:
    row["sent"] += len(data["recipients"])
    row["waves"] = max(row["waves"], data["wave"])
    skipped = dict(row["skipped"])
    for _, reason in data["skipped"]:
        skipped[reason] = skipped.get(reason, 0) + 1
    row["skipped"] = dict(sorted(skipped.items()))


def _cost_recorded(row: Row, data: dict[str, Any]) -> None:
    row["cost"] = str(Decimal(row["cost"]) + Decimal(data["amount"]["amount"]))


def _operators_changed(row: Row, data: dict[str, Any]) -> None:
    gone = set(data["removed"])
    held = row["operators"]
    row["operators"] = [o for o in held if o not in gone] + [
        o for o in data["added"] if o not in held and o not in gone]


def _completed(row: Row, data: dict[str, Any]) -> None:
    row["status"], row["completed_at"] = CampaignStatus.COMPLETED.value, _moment(data)


def _cancelled(row: Row, data: dict[str, Any]) -> None:
    row["status"], row["cancelled_at"] = CampaignStatus.CANCELLED.value, _moment(data)
    row["cancel_reason"] = data["reason"]
