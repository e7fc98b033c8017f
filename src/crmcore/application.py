"""``CRM``: the one entry point a host application creates, with a use-case method per command."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, EventStore, IntegrityError, Recording
from eventsourcing.utils import Environment

from crmcore import _bulk
from crmcore.aggregates.party import Party
from crmcore.commands import (
    AssignParty,
    BulkUpdate,
    ConvertParty,
    DisqualifyLead,
    EngageParty,
    LinkParty,
    PartyCommand,
    QualifyLead,
    RecordDelivery,
    RegisterParty,
    ReopenParty,
    RestoreParty,
    SetPartyAside,
    SubscribeTo,
    UnsubscribeFrom,
    UpdateProfile,
    validate,
)
from crmcore.exceptions import ConcurrentUpdateError, InvalidInput, PartyNotFound
from crmcore.identity import EmailAddress, PhoneNumber
from crmcore.models import (
    Change,
    ConsentEntry,
    ContactDecision,
    Deliverability,
    DeliveryEntry,
    FieldChange,
    MailingExclusion,
    PartyCounts,
    PartySummary,
    PartyView,
    Qualification,
    TimelineEntry,
)
from crmcore.policies import consent
from crmcore.policies.consent import BouncePolicy
from crmcore.projections import (
    MailingExclusionsView,
    MemoryViewStorage,
    PartiesView,
    PostgresViewStorage,
    Row,
    SQLiteViewStorage,
    View,
    ViewRunner,
    ViewStorage,
    read_events,
)
from crmcore.stores import StoreKind, StoreSettings, parse_store_url
from crmcore.values import AddressKind, ConsentChannel, PartyKind, Stage, utc_now

__all__ = ["CRM", "ChangeListener"]

log = logging.getLogger("crmcore")

#: Called after each commit with the changes it made, in order.
ChangeListener = Callable[[Sequence[Change]], None]

_STANDARD_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "actor", "effective_at"}
)
P = TypeVar("P", bound=PartyCommand)


class _Ledger(Application[UUID]):
    """The event-sourced application behind :class:`CRM`: one log for every aggregate."""

    name = "crmcore"
    snapshotting_intervals = {Party: 100}

    def __init__(self, settings: StoreSettings) -> None:
        self._settings = settings
        super().__init__(env=settings.eventsourcing_env())

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        # Only what crmcore derives from its settings: never os.environ.
        return Environment(name, {"IS_SNAPSHOTTING_ENABLED": "y", **(env or {})})

    def construct_recorder(self) -> ApplicationRecorder:
        with self._schema_lock():
            if self._settings.kind is StoreKind.POSTGRESQL and self._settings.pg_schema:
                from psycopg.sql import SQL, Identifier

                schema = Identifier(self._settings.pg_schema)
                with self._datastore().transaction(commit=True) as c:
                    c.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            return super().construct_recorder()

    def construct_snapshot_store(self) -> EventStore[UUID]:
        with self._schema_lock():
            return super().construct_snapshot_store()

    def _datastore(self) -> Any:
        return self.factory.datastore  # type: ignore[attr-defined]

    @contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """Serialise creating tables and functions between processes opening one PostgreSQL store at once.

        The set-up re-creates its functions every time; unserialised, simultaneous openings fail with
        "tuple concurrently updated".
        """
        if self._settings.kind is not StoreKind.POSTGRESQL:
            yield
            return
        with self._datastore().get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext('crmcore_schema_setup'))")
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext('crmcore_schema_setup'))")


class CRM:
    """A CRM over one store: commands that record events, reads that answer from them.

    ``store`` is a URL (``memory:``, ``sqlite:///path.db``, ``postgresql://…``) or :class:`StoreSettings`;
    by default ``$CRMCORE_STORE``, else ``sqlite:///crmcore.db``. ``conflict_retries`` is how many times a
    command whose save collided with another writer is re-run on fresh state (commands given an
    ``expected_version`` are never re-run); retries back off for a random few milliseconds, doubling each
    time, so colliding writers spread out. Close it (or use ``with``) when done.
    """

    def __init__(
        self,
        store: str | StoreSettings | None = None,
        *,
        conflict_retries: int = 8,
        views: Iterable[View] = (),
    ) -> None:
        self.settings = store if isinstance(store, StoreSettings) else parse_store_url(store)
        self.conflict_retries = conflict_retries
        self._app = _Ledger(self.settings)
        self._views_storage = self._make_view_storage()
        self._runner = ViewRunner(
            self._app.recorder, self._app.mapper, self._views_storage,
            [PartiesView(), MailingExclusionsView(), *views],
        )
        self._listeners: list[ChangeListener] = []
        self._listeners_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle of the object

    def close(self) -> None:
        """Release the store's connections."""
        self._app.close()

    def __enter__(self) -> CRM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _make_view_storage(self) -> ViewStorage:
        datastore = getattr(self._app.factory, "datastore", None)
        if self.settings.kind is StoreKind.SQLITE:
            return SQLiteViewStorage(datastore)
        if self.settings.kind is StoreKind.POSTGRESQL:
            return PostgresViewStorage(datastore)
        return MemoryViewStorage()

    # ------------------------------------------------------------------ commands

    def register_party(self, **fields: Any) -> UUID:
        """Register a person or an organization; returns its id. See :class:`RegisterParty`."""
        cmd = validate(RegisterParty, fields)
        party = Party.register(
            kind=cmd.kind, stage=cmd.stage, name=cmd.name, actor=cmd.actor,
            effective_at=cmd.effective_at, organization_name=cmd.organization_name,
            contact_name=cmd.contact_name, channel=cmd.channel, owner=cmd.owner,
            profile=dict(cmd.profile),
        )
        self._save(party)
        return party.id

    def engage(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Record a suspect's first interaction (``channel=``): it becomes a lead."""
        return self._run(EngageParty, party_id, fields, lambda p, c: p.engage(
            channel=c.channel, actor=c.actor, effective_at=c.effective_at))

    def qualify(self, party_id: UUID | str, **fields: Any) -> Qualification:
        """Qualify a lead into a prospect, a target, or both linked (see docs/design/01)."""
        cmd = validate(QualifyLead, {**fields, "party_id": party_id})
        result: dict[str, Party | None] = {}

        def qualify(lead: Party) -> list[Party]:
            link_to = self._load(cmd.link_to) if cmd.link_to is not None else None
            counterpart = lead.qualify(actor=cmd.actor, effective_at=cmd.effective_at, link_to=link_to)
            result["counterpart"] = counterpart
            return [counterpart] if counterpart is not None else []

        lead = self._update(cmd, qualify)
        counterpart = result.get("counterpart")
        parties = [lead, *([counterpart] if counterpart else [])]
        person = next((p for p in parties if p.kind is PartyKind.PERSON), None)
        organization = next((p for p in parties if p.kind is PartyKind.ORGANIZATION), None)
        target_id = organization.id if organization else (cmd.link_to if cmd.link_to else None)
        return Qualification(
            lead_id=lead.id, stage=lead.stage,
            prospect_id=person.id if person else None, target_id=target_id,
        )

    def disqualify(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Disqualify a lead, prospect or target (``reason=`` required); it is kept."""
        return self._run(DisqualifyLead, party_id, fields, lambda p, c: p.disqualify(
            reason=c.reason, actor=c.actor, effective_at=c.effective_at))

    def reopen(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Re-open a disqualified party: it becomes a lead again."""
        return self._run(ReopenParty, party_id, fields, lambda p, c: p.reopen(
            reason=c.reason, actor=c.actor, effective_at=c.effective_at))

    def convert(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Record a purchase (optional ``reference=``): a prospect or target becomes a customer."""
        return self._run(ConvertParty, party_id, fields, lambda p, c: p.convert(
            reference=c.reference, actor=c.actor, effective_at=c.effective_at))

    def assign(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Assign the party to a sales rep (``owner=``; ``None`` unassigns)."""
        return self._run(AssignParty, party_id, fields, lambda p, c: p.assign(
            owner=c.owner, actor=c.actor, effective_at=c.effective_at))

    def link(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Make a person (``party_id``) belong to an organization (``organization_id=``)."""
        def link(person: Party, cmd: LinkParty) -> None:
            person.link(self._load(cmd.organization_id), actor=cmd.actor, effective_at=cmd.effective_at)

        return self._run(LinkParty, party_id, fields, link)

    def update_profile(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Set segmentation traits (``changes={"interest": "cloud", "old": None}``)."""
        return self._run(UpdateProfile, party_id, fields, lambda p, c: p.update_profile(
            changes=dict(c.changes), actor=c.actor, effective_at=c.effective_at))

    def set_aside(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Set a party aside (``reason=`` required), keeping its stage."""
        return self._run(SetPartyAside, party_id, fields, lambda p, c: p.put_aside(
            reason=c.reason, actor=c.actor, effective_at=c.effective_at))

    def restore(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Bring a set-aside party back."""
        return self._run(RestoreParty, party_id, fields, lambda p, c: p.restore(
            reason=c.reason, actor=c.actor, effective_at=c.effective_at))

    # ------------------------------------------------------------------ consent and deliverability

    def subscribe_to(self, party_id: UUID | str, **fields: Any) -> ConsentEntry | None:
        """Record a subscription: ``channel=``, ``source=``, ``lawful_basis=`` (optional ``evidence=``,
        ``external_id=``, ``effective_at=``). See :class:`SubscribeTo`.

        ``effective_at`` may precede the party's previous event (late reports). Returns the new ledger
        entry, or None when an entry with the same ``external_id`` and channel was already recorded.
        """
        cmd = validate(SubscribeTo, {**fields, "party_id": party_id})

        def subscribe(party: Party) -> list[dict[str, Any]]:
            recorded = party.subscribe_to(
                channel=cmd.channel, source=cmd.source, lawful_basis=cmd.lawful_basis, actor=cmd.actor,
                evidence=cmd.evidence, external_id=cmd.external_id, effective_at=cmd.effective_at,
            )
            return party.consents[-1:] if recorded else []

        entries = self._record_entries(cmd, subscribe)
        return ConsentEntry.model_validate(entries[0]) if entries else None

    def unsubscribe_from(self, party_id: UUID | str, **fields: Any) -> list[ConsentEntry]:
        """Record an unsubscription from ``channel=``, or ``channels=[...]``, or ``channels="all"``.

        Also ``source=`` (optional ``evidence=``, ``external_id=``, ``effective_at=``); all channels are
        recorded in one atomic save. Returns the new entries (channels already recorded under the same
        ``external_id`` are skipped).
        """
        cmd = validate(UnsubscribeFrom, {**fields, "party_id": party_id})

        def unsubscribe(party: Party) -> list[dict[str, Any]]:
            before = len(party.consents)
            for channel in cmd.chosen():
                party.unsubscribe_from(
                    channel=channel, source=cmd.source, actor=cmd.actor, evidence=cmd.evidence,
                    external_id=cmd.external_id, effective_at=cmd.effective_at,
                )
            return party.consents[before:]

        return [ConsentEntry.model_validate(e) for e in self._record_entries(cmd, unsubscribe)]

    def record_delivery(
        self, party_id: UUID | str, *, policy: BouncePolicy | None = None, **fields: Any,
    ) -> DeliveryEntry | None:
        """Record what happened to a message sent to ``address=``: ``outcome=`` and/or ``raw_code=``.

        A raw code alone is classified by ``policy`` (default :class:`BouncePolicy`); both must agree
        when the policy reads the code. Returns the new entry, or None for an already known
        ``external_id``. See :class:`RecordDelivery`.
        """
        cmd = validate(RecordDelivery, {**fields, "party_id": party_id})

        def record(party: Party) -> list[dict[str, Any]]:
            recorded = party.record_delivery(
                address=cmd.address, actor=cmd.actor, outcome=cmd.outcome, raw_code=cmd.raw_code,
                external_id=cmd.external_id, effective_at=cmd.effective_at, policy=policy,
                region=cmd.region,
            )
            return party.deliveries[-1:] if recorded else []

        entries = self._record_entries(cmd, record)
        return DeliveryEntry.model_validate(entries[0]) if entries else None

    def consent_history(self, party_id: UUID | str) -> list[ConsentEntry]:
        """The party's consent ledger in effective-time order (ties in recording order)."""
        party = self._load(_uuid(party_id))
        return [ConsentEntry.model_validate(e) for e in sorted(party.consents, key=consent.entry_order)]

    def delivery_history(self, party_id: UUID | str) -> list[DeliveryEntry]:
        """The party's delivery ledger in effective-time order (ties in recording order)."""
        party = self._load(_uuid(party_id))
        return [DeliveryEntry.model_validate(e) for e in sorted(party.deliveries, key=consent.entry_order)]

    def may_contact(
        self,
        party_id: UUID | str,
        channel: ConsentChannel | str,
        at: datetime | None = None,
        *,
        address: str | None = None,
        policy: BouncePolicy | None = None,
    ) -> ContactDecision:
        """Could the party be contacted on ``channel`` at effective time ``at`` (default now)?

        Answered from the party's history as now known, entries recorded late included. ``address``
        defaults to the party's primary address for the channel (e-mail for email and newsletter, phone
        for phone and sms); with none, the answer is no, and says why.
        """
        wanted = _consent_channel(channel)
        moment = _aware(at, "at") if at is not None else utc_now()
        party = self._load(_uuid(party_id))
        kind = consent.address_kind_of(wanted)
        if address is not None:
            reach: EmailAddress | PhoneNumber | None = _read_address(address, kind)
        else:
            reach = _primary_address(party, kind)
        return consent.may_contact(party.consents, party.deliveries, wanted, moment, address=reach,
                                   policy=policy)

    def deliverability(
        self, party_id: UUID | str, *, at: datetime | None = None, policy: BouncePolicy | None = None,
    ) -> list[Deliverability]:
        """Each of the party's addresses with its deliverability at ``at`` (default: every report).

        The raw codes are read again under ``policy``: pass another policy to see what it would decide.
        Addresses are those with delivery reports and those the party carries, ordered by key.
        """
        moment = _aware(at, "at") if at is not None else None
        party = self._load(_uuid(party_id))
        keys = {e["address_key"] for e in party.deliveries}
        for kind in AddressKind:
            keys.update(a.key for a in _addresses(party, kind))
        return [consent.deliverability_at(party.deliveries, key, moment, policy) for key in sorted(keys)]

    def mailing_exclusions(self) -> list[MailingExclusion]:
        """Parties unsubscribed from e-mail or the newsletter, or with a bounced e-mail address, by id.

        Read from the ``mailing_exclusions`` view (caught up first); bounces under the default
        :class:`BouncePolicy`. Parties that never subscribed are not listed: :meth:`may_contact` refuses them.
        """
        self._runner.catch_up(MailingExclusionsView.name)
        rows = self._views_storage.rows(MailingExclusionsView.name, {"excluded": True})
        return sorted(
            (MailingExclusion(party_id=UUID(r["id"]), unsubscribed=r["unsubscribed"], bounced=r["bounced"])
             for r in rows),
            key=lambda m: m.party_id,
        )

    def _record_entries(
        self, cmd: PartyCommand, action: Callable[[Party], list[dict[str, Any]]],
    ) -> list[dict[str, Any]]:
        """Load, record ledger entries, save (re-run on a conflict); the entries recorded by the last run."""
        recorded: list[dict[str, Any]] = []

        def act(party: Party) -> None:
            recorded[:] = action(party)

        self._update(cmd, act)
        return recorded

    # ------------------------------------------------------------------ bulk

    def bulk_register(self, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 1000) -> list[UUID]:
        """Register many parties: all rows are validated first, then written in batched transactions.

        A bad row raises :class:`InvalidInput` naming its index, and nothing is stored. Returns the new
        ids in row order.
        """
        return _bulk.bulk_register(self._app.recorder, self._app.mapper, rows, batch_size,
                                   self._tell_bulk if self._listeners else None)

    def bulk_update(self, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 500) -> int:
        """Re-assign and/or update the profiles of many parties, one atomic save per batch.

        All rows are validated first; unknown parties raise :class:`PartyNotFound` before anything is
        stored for their batch. Returns how many parties changed.
        """
        commands = _bulk.validate_rows(BulkUpdate, rows)
        changed = 0
        for start in range(0, len(commands), batch_size):
            batch = commands[start : start + batch_size]
            for attempt in range(self.conflict_retries + 1):
                parties: dict[UUID, Party] = {}
                for cmd in batch:
                    party = parties.get(cmd.party_id) or self._load(cmd.party_id)
                    touched = False
                    if "owner" in cmd.model_fields_set:
                        touched |= party.assign(
                            owner=cmd.owner, actor=cmd.actor, effective_at=cmd.effective_at
                        )
                    if cmd.profile:
                        touched |= party.update_profile(
                            changes=dict(cmd.profile), actor=cmd.actor, effective_at=cmd.effective_at
                        )
                    if touched or cmd.party_id in parties:
                        parties[cmd.party_id] = party
                try:
                    self._save(*parties.values())
                except ConcurrentUpdateError:
                    if attempt == self.conflict_retries:
                        raise
                    _back_off(attempt)
                    continue
                changed += len(parties)
                break
        return changed

    # ------------------------------------------------------------------ reads: one party

    def get_party(self, party_id: UUID | str, *, version: int | None = None) -> PartyView:
        """The party now, or as it was at ``version``."""
        return PartyView.model_validate(self._load(_uuid(party_id), version=version).state())

    def party_as_of(self, party_id: UUID | str, at: datetime) -> PartyView:
        """The party as it stood at effective time ``at`` (raises PartyNotFound if not yet registered)."""
        moment = _aware(at, "at")
        party: Party | None = None
        for event in self._events_of(_uuid(party_id)):
            if event.effective_at > moment:
                if party is None:  # not registered by then
                    break
                continue  # a later event; consent entries recorded after it may still be effective before
            if party is not None:  # events skipped above leave gaps in the versions
                party.version = event.originator_version - 1
            party = cast(Party, event.mutate(party))
        if party is None:
            raise PartyNotFound(_uuid(party_id), f"not registered at {moment.isoformat()}")
        return PartyView.model_validate(party.state())

    def timeline(self, party_id: UUID | str) -> list[TimelineEntry]:
        """Every event of the party: what happened, who did it, both times, and which fields changed."""
        entries: list[TimelineEntry] = []
        party: Party | None = None
        before: dict[str, Any] = {}
        for event in self._events_of(_uuid(party_id)):
            party = cast(Party, event.mutate(party))
            after = party.state()
            changes = {
                k: FieldChange(before=before.get(k), after=v)
                for k, v in after.items()
                if k not in ("version", "last_effective_at") and before.get(k) != v
            }
            entries.append(TimelineEntry(
                version=event.originator_version, event=type(event).__name__,
                actor=event.actor, effective_at=event.effective_at,
                recorded_at=event.timestamp, data=_event_data(event), changes=changes,
            ))
            before = after
        return entries

    # ------------------------------------------------------------------ reads: views

    def parties(
        self,
        *,
        stage: Stage | str | None = None,
        kind: PartyKind | str | None = None,
        owner: str | None = None,
        unassigned: bool = False,
        set_aside: bool | None = None,
    ) -> list[PartySummary]:
        """Parties from the ``parties`` view, filtered by stage, kind, owner (or ``unassigned``)."""
        where: dict[str, Any] = {}
        if stage is not None:
            where["stage"] = Stage(stage).value
        if kind is not None:
            where["kind"] = PartyKind(kind).value
        if owner is not None and unassigned:
            raise InvalidInput("give either owner or unassigned, not both")
        if owner is not None:
            where["owner"] = owner
        if unassigned:
            where["owner"] = None
        if set_aside is not None:
            where["set_aside"] = set_aside
        self._runner.catch_up(PartiesView.name)
        return [PartySummary.model_validate(r) for r in self._views_storage.rows(PartiesView.name, where)]

    def party_counts(self) -> PartyCounts:
        """How many parties by stage, kind and owner, now."""
        self._runner.catch_up(PartiesView.name)
        storage, name = self._views_storage, PartiesView.name
        return _counts(storage.count_by(name, "stage"), storage.count_by(name, "kind"),
                       storage.count_by(name, "owner"))

    def party_counts_as_of(self, at: datetime, *, known_at: datetime | None = None) -> PartyCounts:
        """The counts as they stood at effective time ``at``.

        With ``known_at``, only events recorded by then count: "as it was known on that date".
        """
        moment = _aware(at, "at")
        known = _aware(known_at, "known_at") if known_at is not None else None

        def accept(event: DomainEventProtocol[Any]) -> bool:
            e = cast(Party.Event, event)
            return e.effective_at <= moment and (known is None or e.timestamp <= known)

        rows = self._runner.fold_as_of(PartiesView.name, accept)
        return _counts_of_rows(rows.values())

    def update_views(self) -> int:
        """Catch every view up with the log now (reads do this by themselves). Returns events applied."""
        return self._runner.catch_up()

    def rebuild_view(self, name: str = PartiesView.name) -> int:
        """Forget a view and rebuild it from the first event."""
        return self._runner.rebuild(name)

    def view_rows(self, name: str, **where: Any) -> list[Row]:
        """Raw rows of any registered view (caught up first), filtered by field equality."""
        self._runner.catch_up(name)
        return self._views_storage.rows(name, where)

    # ------------------------------------------------------------------ changes

    @property
    def position(self) -> int:
        """The position of the last committed change (0 for an empty store)."""
        return int(self._app.recorder.max_notification_id() or 0)

    def changes(self, *, after: int = 0, limit: int | None = None) -> Iterator[Change]:
        """Committed changes after ``after``, in commit order — from any process writing to the store."""
        for count, (position, event) in enumerate(read_events(self._app.recorder, self._app.mapper,
                                                              after=after)):
            if limit is not None and count >= limit:
                return
            yield _change(position, event)

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener`` after every commit made through this object; returns an unsubscribe function.

        A listener that raises is logged and does not undo the commit. Changes made by other processes
        are read with :meth:`changes`.
        """
        with self._listeners_lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    # ------------------------------------------------------------------ internals

    def _run(
        self, model: type[P], party_id: UUID | str, fields: Mapping[str, Any],
        action: Callable[[Party, P], Any],
    ) -> PartyView:
        cmd = validate(model, {**fields, "party_id": party_id})

        def act(party: Party) -> None:
            action(party, cmd)

        return PartyView.model_validate(self._update(cmd, act).state())

    def _update(self, cmd: PartyCommand, action: Callable[[Party], list[Party] | None]) -> Party:
        """Load, command, save; on a version conflict re-run on fresh state, unless a version was expected."""
        retries = 0 if cmd.expected_version is not None else self.conflict_retries
        for attempt in range(retries + 1):
            party = self._load(cmd.party_id)
            if cmd.expected_version is not None and party.version != cmd.expected_version:
                raise ConcurrentUpdateError(
                    party.id, f"expected version {cmd.expected_version}, found {party.version}"
                )
            others = action(party) or []
            try:
                self._save(party, *others)
            except ConcurrentUpdateError:
                if attempt == retries:
                    raise
                _back_off(attempt)
                continue
            return party
        raise AssertionError("unreachable")  # pragma: no cover

    def _load(self, party_id: UUID, *, version: int | None = None) -> Party:
        try:
            party: Any = self._app.repository.get(party_id, version=version)
        except AggregateNotFoundError:
            raise PartyNotFound(party_id) from None
        if not isinstance(party, Party):
            raise PartyNotFound(party_id, "not a party")
        return party

    def _events_of(self, party_id: UUID) -> list[Party.Event]:
        events = cast(list[Party.Event], list(self._app.events.get(party_id)))
        if not events:
            raise PartyNotFound(party_id)
        return events

    def _save(self, *aggregates: Party) -> list[Recording[UUID]]:
        try:
            recordings = self._app.save(*aggregates)
        except IntegrityError:
            first = aggregates[0].id if aggregates else None
            raise ConcurrentUpdateError(first) from None
        if self._listeners and recordings:
            self._tell([_change(r.notification.id, r.domain_event) for r in recordings])
        return recordings

    def _tell(self, changes: Sequence[Change]) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(changes)
            except Exception:
                log.exception("a change listener failed; the commit stands")

    def _tell_bulk(self, stored: Sequence[Any], positions: Sequence[int] | None) -> None:
        if not positions:
            return
        changes = [
            _change(pos, self._app.mapper.to_domain_event(s))
            for pos, s in zip(positions, stored, strict=True)
        ]
        self._tell(changes)


def _back_off(attempt: int) -> None:
    """Sleep a random 0-2^attempt milliseconds (capped at 0.25 s) before re-running a collided command."""
    time.sleep(random.uniform(0, min(0.25, 0.001 * 2**attempt)))


def _uuid(value: UUID | str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidInput(
            f"not a party id: {value!r}",
            [{"loc": ("party_id",), "msg": "not a UUID", "type": "uuid_parsing"}],
        ) from None


def _aware(value: datetime, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{field} must be a timezone-aware datetime",
            [{"loc": (field,), "msg": "naive or not a datetime", "type": "timezone_aware"}],
        )
    return value


def _consent_channel(value: ConsentChannel | str) -> ConsentChannel:
    try:
        return ConsentChannel(value)
    except ValueError:
        choices = ", ".join(c.value for c in ConsentChannel)
        raise InvalidInput(
            f"not a consent channel: {value!r} (one of {choices})",
            [{"loc": ("channel",), "msg": f"one of {choices}", "type": "enum"}],
        ) from None


def _read_address(value: str, kind: AddressKind) -> EmailAddress | PhoneNumber:
    if kind is AddressKind.EMAIL:
        return EmailAddress.parse(value, field="address")
    return PhoneNumber.parse(value, field="address")


def _addresses(party: Party, kind: AddressKind) -> list[EmailAddress | PhoneNumber]:
    """The party's addresses of ``kind``, primary first (``emails`` / ``phones``, once parties carry them)."""
    stored = getattr(party, "emails" if kind is AddressKind.EMAIL else "phones", None) or []
    return [_read_address(str(value), kind) for value in stored]


def _primary_address(party: Party, kind: AddressKind) -> EmailAddress | PhoneNumber | None:
    addresses = _addresses(party, kind)
    return addresses[0] if addresses else None


def _event_data(event: DomainEventProtocol[Any]) -> dict[str, Any]:
    return {k: v for k, v in vars(event).items() if k not in _STANDARD_FIELDS}


def _change(position: int, domain_event: DomainEventProtocol[Any]) -> Change:
    event = cast(Any, domain_event)
    cls = type(event)
    return Change(
        position=position,
        aggregate_id=event.originator_id,
        aggregate_type=cls.__qualname__.split(".")[0],
        event=cls.__name__,
        version=event.originator_version,
        actor=getattr(event, "actor", ""),
        effective_at=getattr(event, "effective_at", event.timestamp),
        recorded_at=event.timestamp,
        data=_event_data(event),
    )


def _counts(
    by_stage: Mapping[Any, int], by_kind: Mapping[Any, int], by_owner: Mapping[Any, int]
) -> PartyCounts:
    owners = {str(k): v for k, v in by_owner.items() if k is not None}
    return PartyCounts(
        total=sum(by_stage.values()),
        by_stage={Stage(k): v for k, v in by_stage.items()},
        by_kind={PartyKind(k): v for k, v in by_kind.items()},
        by_owner=dict(sorted(owners.items())),
        unassigned=int(by_owner.get(None, 0)),
    )


def _counts_of_rows(rows: Iterable[Row]) -> PartyCounts:
    by_stage: dict[Any, int] = {}
    by_kind: dict[Any, int] = {}
    by_owner: dict[Any, int] = {}
    for row in rows:
        for table, field in ((by_stage, "stage"), (by_kind, "kind"), (by_owner, "owner")):
            table[row.get(field)] = table.get(row.get(field), 0) + 1
    return _counts(by_stage, by_kind, by_owner)
