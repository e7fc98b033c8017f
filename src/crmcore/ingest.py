"""Ingesting provider events: what mail tools and telephone systems report about a campaign's recipients.

Each event becomes one ``Engagement`` aggregate of one event, whose id is derived from the report's source
and external id (:func:`~crmcore.aggregates.engagement.engagement_id`), so ingestion is idempotent: an id
already stored, or met twice in one call, is skipped and counted as a duplicate. Two processes ingesting
the same report collide on the store's key; the loser asks which ids exist now and writes its batch again
without them.

Everything is validated and resolved before anything is written (:func:`resolve_events`): the fields
(:class:`ProviderEvent`), what each kind allows, the campaign (loaded once per call per campaign), the
recipient - by party id or by address, against the campaign's send list (e-mail kinds: recipients a
newsletter wave was sent to) or call list (``called``). Any bad event raises :class:`InvalidInput` naming
every bad event by index and field, and nothing is stored.

Stored events are then built directly, in the format the application's mapper writes (JSON transcoder,
then its compressor and cipher), and written ``batch_size`` per transaction (:func:`write_reports`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any
from uuid import UUID

import orjson
import pydantic
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper, StoredEvent
from eventsourcing.utils import get_topic
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, TypeAdapter

from crmcore._bulk import _bulk_error, _fast_json, _row_schema
from crmcore._validation import invalid_input
from crmcore.aggregates.campaign import Campaign
from crmcore.aggregates.engagement import _ENGAGEMENT_PREFIX, EVENT_OF_KIND, Engagement, _uuid5
from crmcore.aggregates.party import CLOCK_SKEW_SECONDS
from crmcore.exceptions import InvalidInput
from crmcore.policies.suppression import address_key_of
from crmcore.stores import existing_originators
from crmcore.values import (
    ActorId,
    CallOutcome,
    CampaignChannel,
    EffectiveTime,
    EngagementKind,
    ExternalId,
    RawCode,
    Source,
    utc_now,
)
from crmcore.values import _no_control_characters as _plain
from crmcore.values import _no_control_characters_in_text as _text

__all__ = [
    "EMAIL_KINDS",
    "ProviderEvent",
    "ResolvedReport",
    "WriteResult",
    "resolve_events",
    "write_reports",
]

#: Kinds reported about an e-mail sent by a newsletter wave (``called`` is the telemarketing kind).
EMAIL_KINDS = frozenset(EngagementKind) - {EngagementKind.CALLED}
_BOUNCES = frozenset({EngagementKind.SOFT_BOUNCE, EngagementKind.HARD_BOUNCE})
_CALL_FIELDS = ("operator", "outcome", "notes", "call_back_on")
_ENGAGEMENT_TOPIC = get_topic(Engagement)
_TOPIC_OF_KIND = {kind: get_topic(cls) for kind, cls in EVENT_OF_KIND.items()}
_DATETIME = "datetime_iso"

Link = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
                 AfterValidator(_plain)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
                  AfterValidator(_text)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320),
                    AfterValidator(_plain)]


class ProviderEvent(BaseModel):
    """One event a mail tool or telephone system reported about one recipient of a campaign.

    ``external_id`` is the provider's id for it (with the ingestion's ``source``, what makes it unique);
    the recipient is ``party_id`` or ``address`` (or both, which must agree), resolved against the
    campaign's send list; ``occurred_at`` (aware, not in the future) becomes the effective time. By kind:
    ``link`` (clicked), ``raw_code`` (soft and hard bounces), ``operator`` and ``outcome`` (called, both
    required), ``notes`` and ``call_back_on`` (called; the date is required with a ``call_back`` outcome).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    external_id: ExternalId
    campaign_id: UUID
    kind: EngagementKind
    occurred_at: EffectiveTime
    party_id: UUID | None = None
    address: Address | None = None
    link: Link | None = None
    raw_code: RawCode | None = None
    operator: ActorId | None = None
    outcome: CallOutcome | None = None
    notes: Notes | None = None
    call_back_on: date | None = None


class _Options(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Source
    actor: ActorId
    batch_size: Annotated[int, pydantic.Field(ge=1)]


#: Events are validated into plain dicts with exactly ProviderEvent's fields and rules (no model objects).
_ROW = _row_schema(ProviderEvent)
_ROWS: TypeAdapter[list[Any]] = TypeAdapter(list[_ROW] if _ROW is not None else list[ProviderEvent])  # type: ignore[valid-type]


@dataclass(frozen=True, slots=True)
class ResolvedReport:
    """A valid event resolved against its campaign: the aggregate id, the kind and the ``Engagement``
    event's fields."""

    id: UUID
    kind: EngagementKind
    facts: dict[str, Any]

    def aggregate(self) -> Engagement:
        """The new ``Engagement`` aggregate for this report (its one event pending)."""
        facts = dict(self.facts)
        return Engagement.report(self.kind, source=facts.pop("source"), external_id=facts.pop("external_id"),
                                 **facts)


def check_options(source: Any, actor: Any, batch_size: Any) -> tuple[str, str, int]:
    """The ingestion's ``source``, ``actor`` and ``batch_size``, validated."""
    try:
        options = _Options(source=source, actor=actor, batch_size=batch_size)
    except pydantic.ValidationError as error:
        raise invalid_input(error) from None
    return options.source, options.actor, options.batch_size


def resolve_events(
    events: Iterable[Mapping[str, Any] | ProviderEvent],
    load_campaign: Callable[[UUID], Campaign | None],
    *,
    source: str,
    actor: str,
) -> list[ResolvedReport]:
    """Validate and resolve every event (see the module docstring), in the order given.

    ``load_campaign`` is asked once per campaign id (None: there is no such campaign). Raises
    :class:`InvalidInput` listing every problem with ``loc`` = (index, field); nothing is resolved then.
    """
    validated, errors = _validated(list(events))
    latest = utc_now() + timedelta(seconds=CLOCK_SKEW_SECONDS)
    campaigns: dict[UUID, _Campaign | None] = {}
    resolved: list[ResolvedReport] = []
    append, prefix = resolved.append, f"{source}\x1f"
    for index, event in enumerate(validated):
        if event is None:
            continue
        problems: list[tuple[str, str]] = []
        get = event.get
        kind = event["kind"]
        if event["occurred_at"] > latest:
            problems.append(("occurred_at", f"{event['occurred_at'].isoformat()} is in the future"))
        # (a delivery or an open with only the required fields and one recipient field has nothing to check)
        if (kind is not EngagementKind.DELIVERED and kind is not EngagementKind.OPENED) or len(event) > 5:
            _kind_problems(event, problems)
        campaign_id = event["campaign_id"]
        campaign = campaigns.get(campaign_id, _MISSING)
        if campaign is _MISSING:
            loaded = load_campaign(campaign_id)
            campaign = campaigns[campaign_id] = _Campaign(loaded) if loaded is not None else None
        found = None
        if campaign is None:
            problems.append(("campaign_id", f"no campaign {campaign_id}"))
        else:
            found = campaign.recipient(kind, get("party_id"), get("address"), problems)
        if problems:
            errors += [{"loc": (index, field), "msg": msg, "type": "ingest"} for field, msg in problems]
            continue
        assert found is not None
        party, channel, address = found
        facts = {
            "actor": actor, "effective_at": event["occurred_at"], "campaign_id": campaign_id,
            "party_id": party, "channel": channel, "address": address, "source": source,
            "external_id": event["external_id"],
        }
        if kind is EngagementKind.CLICKED:
            facts["link"] = get("link")
        elif kind in _BOUNCES:
            facts["raw_code"] = get("raw_code")
        elif kind is EngagementKind.CALLED:
            call_back_on = get("call_back_on")
            facts.update(operator=event["operator"], outcome=event["outcome"].value, notes=get("notes"),
                         call_back_on=call_back_on.isoformat() if call_back_on else None, opportunity_id=None)
        append(ResolvedReport(_uuid5(_ENGAGEMENT_PREFIX, prefix + event["external_id"]), kind, facts))
    if errors:
        errors.sort(key=lambda e: e["loc"][0] if e["loc"] and isinstance(e["loc"][0], int) else -1)
        raise _bulk_error(errors)
    return resolved


def _validated(given: list[Any]) -> tuple[list[dict[str, Any] | None], list[dict[str, Any]]]:
    """The events validated as dicts of the fields given (None for a bad one), and the problems, by index
    and field."""
    given = [_fields_of(e) if isinstance(e, ProviderEvent) else e for e in given]
    try:
        return [_fields_of(e) for e in _ROWS.validate_python(given)], []
    except pydantic.ValidationError as error:
        errors = [{"loc": tuple(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
    bad = {e["loc"][0] for e in errors if e["loc"] and isinstance(e["loc"][0], int)}
    validated: list[dict[str, Any] | None] = [None] * len(given)
    for index, item in enumerate(given):
        if index not in bad:
            validated[index] = _fields_of(_ROWS.validate_python([item])[0])
    return validated, errors


def _fields_of(event: Any) -> dict[str, Any]:
    """A validated row as it is; a model (given, or validated without a row schema) as the fields set."""
    if isinstance(event, ProviderEvent):
        return {k: getattr(event, k) for k in event.model_fields_set | _REQUIRED}
    return event  # type: ignore[no-any-return]


_REQUIRED = frozenset(name for name, info in ProviderEvent.model_fields.items() if info.is_required())


def _kind_problems(event: Mapping[str, Any], problems: list[tuple[str, str]]) -> None:
    """What the event's kind refuses (fields it does not carry, fields it needs), added to ``problems``."""
    kind, get = event["kind"], event.get
    if get("link") is not None and kind is not EngagementKind.CLICKED:
        problems.append(("link", f"a {kind.value} report has no link"))
    if get("raw_code") is not None and kind not in _BOUNCES:
        problems.append(("raw_code", f"a {kind.value} report has no raw code (bounces have)"))
    if kind is EngagementKind.CALLED:
        for field in ("operator", "outcome"):
            if get(field) is None:
                problems.append((field, f"a call needs its {field}"))
        if get("outcome") is CallOutcome.CALL_BACK and get("call_back_on") is None:
            problems.append(("call_back_on", "a call_back outcome needs the date to call back on"))
        elif get("call_back_on") is not None and get("outcome") is not CallOutcome.CALL_BACK:
            problems.append(("call_back_on", "a date to call back on goes with a call_back outcome"))
    else:
        for field in _CALL_FIELDS:
            if get(field) is not None:
                problems.append((field, f"a {kind.value} report has no {field} (calls have)"))


_MISSING: Any = object()


class _Campaign:
    """A campaign's send list and call list, indexed by party and by address key (built when first used)."""

    __slots__ = ("by_address", "calls", "emails", "id")

    def __init__(self, campaign: Campaign) -> None:
        self.id = campaign.id
        channels = campaign.channels
        #: the newsletter's recipients that a wave was sent to, and the call list: party id -> address
        self.emails: dict[UUID, str] | None = None
        self.calls: dict[UUID, str] | None = None
        if CampaignChannel.NEWSLETTER.value in channels:
            listed = campaign.recipients.get(CampaignChannel.NEWSLETTER.value, {})
            self.emails = {UUID(p): listed[p] for p in campaign.sent if p in listed}
        if CampaignChannel.TELEMARKETING.value in channels:
            listed = campaign.recipients.get(CampaignChannel.TELEMARKETING.value, {})
            self.calls = {UUID(p): a for p, a in listed.items()}
        self.by_address: dict[str, dict[str, UUID]] = {}

    def recipient(
        self, kind: EngagementKind, party: UUID | None, address: str | None,
        problems: list[tuple[str, str]],
    ) -> tuple[UUID, str, str] | None:
        """(party id, campaign channel, address) of an event's recipient; problems are appended."""
        calls = kind is EngagementKind.CALLED
        channel = _TELEMARKETING if calls else _NEWSLETTER
        listed = self.calls if calls else self.emails
        if listed is None:
            problems.append(("kind", f"campaign {self.id} has no {channel}"))
            return None
        if address is not None:
            found = self._by_address(channel, listed).get(_key(address))
            if found is None:
                where = "call list" if calls else "send list"
                problems.append(("address", f"{address} is not on the {where} of campaign {self.id}"))
                return None
            if party is not None and found != party:
                problems.append(("address", f"{address} is the address of party {found}, not of party "
                                            f"{party}, in campaign {self.id}"))
                return None
            party = found
        if party is None:
            problems.append(("party_id", "give the recipient: party_id or address"))
            return None
        reached = listed.get(party)
        if reached is None:
            problems.append(("party_id", f"party {party} is not on the call list of campaign {self.id}"
                             if calls else f"campaign {self.id} sent nothing to party {party}"))
            return None
        return party, channel, reached

    def _by_address(self, channel: str, listed: Mapping[UUID, str]) -> dict[str, UUID]:
        index = self.by_address.get(channel)
        if index is None:
            index = self.by_address[channel] = {}
            for party, address in listed.items():
                index.setdefault(_key(address), party)
        return index


_NEWSLETTER = CampaignChannel.NEWSLETTER.value
_TELEMARKETING = CampaignChannel.TELEMARKETING.value


def _key(address: str) -> str:
    try:
        return address_key_of(address.strip())
    except InvalidInput:
        return address.strip()  # matches no recipient: reported as not on the list


# ---------------------------------------------------------------------- writing


@dataclass
class WriteResult:
    """What :func:`write_reports` wrote: how many, how many were already stored, and where."""

    stored: int = 0
    duplicates: int = 0
    positions: list[int] | None = None


#: Told of each committed batch: its stored events and their notification ids.
Committed = Callable[[list[StoredEvent], Sequence[int] | None], None]
#: A stored event as the SQLite recorder inserts it: (originator id hex, version, topic, state).
Row = tuple[str, int, str, bytes]


def write_reports(
    recorder: ApplicationRecorder,
    mapper: Mapper[Any],
    reports: Sequence[ResolvedReport],
    batch_size: int,
    committed: Committed | None = None,
) -> WriteResult:
    """Store the reports not yet stored, ``batch_size`` per transaction; skip (and count) the others.

    Reports repeated in ``reports`` are stored once (the first). Which ids exist is asked of the store
    first, in batches; each batch is then written in id order (neighbouring ids share pages of the store's
    primary key index). A batch that still collides - another process stored one of its reports meanwhile -
    is written again without the reports that exist now. On SQLite, building a batch overlaps the commit of
    the one before (:meth:`~crmcore.stores.BatchedSQLiteApplicationRecorder.insert_row_batches`).
    """
    result = WriteResult(positions=[])
    unique: dict[UUID, ResolvedReport] = {}
    for report in reports:
        if report.id in unique:
            result.duplicates += 1
        else:
            unique[report.id] = report
    pending = list(unique.values())
    present: set[UUID] = set()
    for start in range(0, len(pending), batch_size):
        present |= existing_originators(recorder, [r.id for r in pending[start : start + batch_size]])
    if present:
        result.duplicates += len(present)
        pending = [r for r in pending if r.id not in present]
    encode = _encoder(mapper)
    batches = (encode(sorted(pending[start : start + batch_size], key=_id_of))
               for start in range(0, len(pending), batch_size))

    def tell(rows: Sequence[Row], positions: Sequence[int] | None) -> None:
        result.stored += len(rows)
        if positions is None:
            result.positions = None
        elif result.positions is not None:
            result.positions += positions
        if committed is not None:
            committed(_stored(rows), positions)

    def without_stored(rows: Sequence[Row], error: IntegrityError) -> list[Row]:
        """``rows`` less those stored meanwhile (by another process); ``error`` again if there are none."""
        stored = existing_originators(recorder, [UUID(r[0]) for r in rows])
        if not stored:
            raise error  # the collision was not with a report
        result.duplicates += len(stored)
        hexes = {i.hex for i in stored}
        return [r for r in rows if r[0] not in hexes]

    if _is_batched_sqlite(recorder):
        last: list[Sequence[Row]] = []

        def tracked(again: list[Row] | None) -> Iterator[Sequence[Row]]:
            for rows in ([again] if again else []), batches:
                for batch in rows:
                    last[:] = [batch]
                    yield batch

        again: list[Row] | None = None
        while True:
            try:
                recorder.insert_row_batches(tracked(again), tell)  # type: ignore[attr-defined]
                return result
            except IntegrityError as error:
                again = without_stored(last[0], error)  # the batch that collided (those before committed)
    for rows in batches:
        while rows:
            try:
                positions = recorder.insert_events(_stored(rows))
            except IntegrityError as error:
                rows = without_stored(rows, error)
                continue
            tell(rows, positions)
            break
    return result


def _is_batched_sqlite(recorder: ApplicationRecorder) -> bool:
    from crmcore.stores import BatchedSQLiteApplicationRecorder

    return isinstance(recorder, BatchedSQLiteApplicationRecorder)


def _stored(rows: Sequence[Row]) -> list[StoredEvent]:
    return [StoredEvent(originator_id=UUID(hex_id), originator_version=version, topic=topic, state=state)
            for hex_id, version, topic, state in rows]


def _id_of(report: ResolvedReport) -> UUID:
    return report.id


def _encoder(mapper: Mapper[Any]) -> Callable[[Sequence[ResolvedReport]], list[Row]]:
    """A function building the stored rows of reports as ``mapper`` would store them."""
    compressor, cipher = mapper.compressor, mapper.cipher
    dumps = orjson.dumps

    if not _fast_json(mapper):
        def through_mapper(reports: Sequence[ResolvedReport]) -> list[Row]:
            now = utc_now()
            rows: list[Row] = []
            for r in reports:
                stored = mapper.to_stored_event(EVENT_OF_KIND[r.kind](
                    originator_id=r.id, originator_version=1, timestamp=now,
                    originator_topic=_ENGAGEMENT_TOPIC, **r.facts))
                rows.append((r.id.hex, 1, stored.topic, stored.state))
            return rows

        return through_mapper

    def encode(reports: Sequence[ResolvedReport]) -> list[Row]:
        stamp = {"_type_": _DATETIME, "_data_": utc_now()}
        out: list[Row] = []
        for report in reports:
            facts = report.facts
            state = dict(facts)
            state["timestamp"] = stamp
            state["originator_topic"] = _ENGAGEMENT_TOPIC
            state["effective_at"] = {"_type_": _DATETIME, "_data_": facts["effective_at"]}
            state["campaign_id"] = {"_type_": "uuid_hex", "_data_": facts["campaign_id"].hex}
            state["party_id"] = {"_type_": "uuid_hex", "_data_": facts["party_id"].hex}
            payload = dumps(state)
            if compressor:
                payload = compressor.compress(payload)
            if cipher:
                payload = cipher.encrypt(payload)
            elif not compressor:
                payload = b"%b" % payload  # a right-sized copy of orjson's buffer (see crmcore._bulk)
            out.append((report.id.hex, 1, _TOPIC_OF_KIND[report.kind], payload))
        return out

    return encode
