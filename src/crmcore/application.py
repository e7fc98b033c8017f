"""``CRM``: the one entry point a host application creates, with a use-case method per command."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal, TypeVar, cast, overload
from uuid import UUID

import pydantic
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, EventStore, IntegrityError, Recording
from eventsourcing.utils import Environment

from crmcore import _bulk
from crmcore.aggregates.catalog import CATALOG_ID, FieldCatalog
from crmcore.aggregates.party import Party
from crmcore.commands import (
    AssignParty,
    BulkUpdate,
    ChangeFieldRules,
    ConvertParty,
    DefineField,
    DisqualifyLead,
    EngageParty,
    LinkParty,
    PartyCommand,
    QualifyLead,
    RegisterPartyWithFields,
    ReopenParty,
    RestoreParty,
    RetireField,
    SetFields,
    SetPartyAside,
    UpdateProfile,
    invalid_input,
    validate,
)
from crmcore.exceptions import (
    ConcurrentUpdateError,
    FieldNotDefined,
    FieldRuleViolation,
    InvalidInput,
    PartyNotFound,
)
from crmcore.fields import STANDARD_PROFILE, FieldDefinition, FieldSet
from crmcore.models import (
    Change,
    FieldChange,
    FieldScanFinding,
    FieldValueView,
    PartyCounts,
    PartySummary,
    PartyView,
    Qualification,
    TimelineEntry,
)
from crmcore.projections import (
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
from crmcore.values import PartyKind, Stage

__all__ = ["CRM", "ChangeListener"]

log = logging.getLogger("crmcore")

#: Called after each commit with the changes it made, in order.
ChangeListener = Callable[[Sequence[Change]], None]

_STANDARD_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "actor", "effective_at"}
)
P = TypeVar("P", bound=PartyCommand)
T = TypeVar("T")

#: How many catalog versions a CRM keeps decoded in memory (versions never change once written).
_CATALOG_CACHE_SIZE = 64


class _Ledger(Application[UUID]):
    """The event-sourced application behind :class:`CRM`: one log for every aggregate."""

    name = "crmcore"
    snapshotting_intervals = {Party: 100, FieldCatalog: 50}

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
            self._app.recorder, self._app.mapper, self._views_storage, [PartiesView(), *views]
        )
        self._listeners: list[ChangeListener] = []
        self._listeners_lock = threading.Lock()
        self._catalog_versions: dict[int, FieldSet] = {}

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
        """Register a person or an organization; returns its id. See :class:`RegisterParty`.

        ``fields={...}`` sets custom field values (see :meth:`set_fields`); a registration missing a
        required custom field, or with profile traits the field catalog refuses, is refused.
        """
        cmd = validate(RegisterPartyWithFields, fields)
        catalog = self._current_fields()
        values = catalog.section("custom").validate(cmd.fields)
        party = Party.register(
            kind=cmd.kind, stage=cmd.stage, name=cmd.name, actor=cmd.actor,
            effective_at=cmd.effective_at, organization_name=cmd.organization_name,
            contact_name=cmd.contact_name, channel=cmd.channel, owner=cmd.owner,
            profile=self._checked_profile(catalog, cmd.profile, partial=False),
        )
        if values:  # recorded as the party's second event, in the same atomic save
            party.set_fields(values=values, catalog_version=catalog.version, actor=cmd.actor,
                             effective_at=party.last_effective_at)
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
        """Set segmentation traits (``changes={"interest": "cloud", "old": None}``).

        Once the field catalog defines profile traits, values are normalised and checked against them and
        traits it does not define are refused; until then traits are free-form.
        """
        return self._run(UpdateProfile, party_id, fields, lambda p, c: p.update_profile(
            changes=self._checked_profile(self._current_fields(), c.changes, partial=True),
            actor=c.actor, effective_at=c.effective_at))

    def set_aside(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Set a party aside (``reason=`` required), keeping its stage."""
        return self._run(SetPartyAside, party_id, fields, lambda p, c: p.put_aside(
            reason=c.reason, actor=c.actor, effective_at=c.effective_at))

    def restore(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Bring a set-aside party back."""
        return self._run(RestoreParty, party_id, fields, lambda p, c: p.restore(
            reason=c.reason, actor=c.actor, effective_at=c.effective_at))

    # ------------------------------------------------------------------ bulk

    def bulk_register(self, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 1000) -> list[UUID]:
        """Register many parties: all rows are validated first, then written in batched transactions.

        A bad row raises :class:`InvalidInput` naming its index, and nothing is stored. Returns the new
        ids in row order.
        """
        rows = self._checked_bulk_registrations(rows)
        return _bulk.bulk_register(self._app.recorder, self._app.mapper, rows, batch_size,
                                   self._tell_bulk if self._listeners else None)

    def bulk_update(self, rows: Iterable[Mapping[str, Any]], *, batch_size: int = 500) -> int:
        """Re-assign and/or update the profiles of many parties, one atomic save per batch.

        All rows are validated first; unknown parties raise :class:`PartyNotFound` before anything is
        stored for their batch. Returns how many parties changed.
        """
        commands = self._checked_bulk_profiles(_bulk.validate_rows(BulkUpdate, rows))
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

    # ------------------------------------------------------------------ custom fields and profile traits

    @overload
    def define_field(self, *, dry_run: Literal[False] = False, **definition: Any) -> FieldDefinition: ...

    @overload
    def define_field(self, *, dry_run: Literal[True], **definition: Any) -> list[FieldScanFinding]: ...

    def define_field(self, *, dry_run: bool = False, **definition: Any) -> Any:
        """Add a field to the catalog (see :class:`FieldDefinition`; ``actor=`` required, ``effective_at=``
        optional) and return its definition.

        With ``dry_run=True`` nothing is stored: the same checks run, and the parties whose stored values
        would break the new definition are returned (a new required field: every party without a value).
        """
        cmd = validate(DefineField, _split_command(definition, "definition"))
        if dry_run:
            self._catalog_or_new(cmd.actor).define(cmd.definition, actor=cmd.actor,
                                                   effective_at=cmd.effective_at)
            return self.scan_fields([cmd.definition])
        self._change_catalog(cmd.actor, lambda c: c.define(
            cmd.definition, actor=cmd.actor, effective_at=cmd.effective_at))
        return cmd.definition

    def adopt_standard_profile(self, *, actor: str, effective_at: datetime | None = None) -> FieldSet:
        """Define the four standard profile traits (:data:`crmcore.fields.STANDARD_PROFILE`) in one change.

        From then on profile traits are checked against the catalog. Returns the catalog after it.
        """
        cmds = [validate(DefineField, {"definition": d, "actor": actor, "effective_at": effective_at})
                for d in STANDARD_PROFILE]

        def define_all(catalog: FieldCatalog) -> None:
            for cmd in cmds:
                catalog.define(cmd.definition, actor=cmd.actor, effective_at=cmd.effective_at)

        self._change_catalog(cmds[0].actor, define_all)
        return self.field_catalog()

    @overload
    def change_field_rules(
        self, name: str, /, *, dry_run: Literal[False] = False, **changes: Any
    ) -> FieldDefinition: ...

    @overload
    def change_field_rules(
        self, name: str, /, *, dry_run: Literal[True], **changes: Any
    ) -> list[FieldScanFinding]: ...

    def change_field_rules(self, name: str, /, *, dry_run: bool = False, **changes: Any) -> Any:
        """Change an active field's rules (``required=True``, ``choices=[...]``, ``maximum=...``; ``actor=``
        required) and return the new definition. Its kind and section never change. A change that leaves
        the definition as it was records nothing.

        With ``dry_run=True`` nothing is stored: the parties whose stored values break the changed rules
        are returned, so a tightened rule can be seen at work before it is applied.
        """
        cmd = validate(ChangeFieldRules, {**_split_command(changes, "changes"), "name": name})
        catalog = self._catalog_or_new(cmd.actor)
        proposed = _changed_definition(catalog.definition(cmd.name), cmd.changes)
        if dry_run:
            catalog.change_rules(proposed, actor=cmd.actor, effective_at=cmd.effective_at)
            return self.scan_fields([proposed])

        def change(catalog: FieldCatalog) -> FieldDefinition:
            definition = _changed_definition(catalog.definition(cmd.name), cmd.changes)
            catalog.change_rules(definition, actor=cmd.actor, effective_at=cmd.effective_at)
            return definition

        return self._change_catalog(cmd.actor, change)

    def retire_field(self, name: str, /, **fields: Any) -> None:
        """Retire an active field (``reason=``, ``actor=``): no new values; stored values stay readable."""
        cmd = validate(RetireField, {**fields, "name": name})
        self._change_catalog(cmd.actor, lambda c: c.retire(
            cmd.name, reason=cmd.reason, actor=cmd.actor, effective_at=cmd.effective_at))

    def field_catalog(self, version: int | None = None) -> FieldSet:
        """The active definitions now, or at catalog ``version``; ``.version`` says which (0: empty)."""
        if version is None:
            return self._current_fields()
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise InvalidInput(f"a catalog version is a whole number from 0, not {version!r}")
        current = self._catalog_version()
        if version > current:
            raise InvalidInput(f"the field catalog has no version {version} (it is at {current})")
        return self._fields_at(version)

    def set_fields(self, party_id: UUID | str, **fields: Any) -> PartyView:
        """Set custom field values (``values={"legal_form": "spa", "old": None}``; ``None`` clears one).

        Values are normalised by their field's rules and recorded with the catalog version they were
        checked against; a value that breaks a rule raises :class:`FieldRuleViolation` (several problems:
        one :class:`InvalidInput` listing them) and nothing is stored. Setting values equal to the stored
        ones records nothing.
        """
        def set_values(party: Party, cmd: SetFields) -> None:
            catalog = self._current_fields()
            values = catalog.section("custom").validate(cmd.values, partial=True)
            party.set_fields(values=values, catalog_version=catalog.version, actor=cmd.actor,
                             effective_at=cmd.effective_at)

        return self._run(SetFields, party_id, fields, set_values)

    def field_values(self, party_id: UUID | str) -> dict[str, FieldValueView]:
        """A party's custom field values, each with the catalog version and definition it was set under."""
        party = self._load(_uuid(party_id))
        current = self._current_fields()
        result: dict[str, FieldValueView] = {}
        for name, value in party.custom_fields.items():
            version = party.custom_field_versions.get(name, 0)
            result[name] = FieldValueView(
                name=name, value=value, catalog_version=version,
                definition=self._fields_at(version).get(name), retired=name not in current,
            )
        return result

    def scan_fields(
        self, definitions: Iterable[FieldDefinition] | None = None, *, names: Iterable[str] | None = None,
    ) -> list[FieldScanFinding]:
        """The parties whose stored values break ``definitions`` (proposed rules, not yet stored) or, by
        default, the catalog's current rules; ``names`` limits the scan to those fields.

        Custom fields are checked against ``custom_fields``, profile traits against ``profile``; a
        required field with no value is a finding too. Reads the ``parties`` view, not each party.
        """
        if definitions is None:
            scope = dict(self._current_fields())
        else:
            scope = {}
            for definition in definitions:
                if not isinstance(definition, FieldDefinition):
                    raise InvalidInput(f"scan_fields takes FieldDefinition objects, not {type(definition)}")
                scope[definition.name] = definition
        if names is not None:
            wanted = list(names)
            missing = [n for n in wanted if n not in scope]
            if missing:
                raise FieldNotDefined(missing[0])
            scope = {n: scope[n] for n in wanted}
        findings: list[FieldScanFinding] = []
        for row in sorted(self.view_rows(PartiesView.name), key=lambda r: str(r["id"])):
            for name, definition in scope.items():
                values = row.get("profile" if definition.section == "profile" else "custom_fields") or {}
                try:
                    definition.normalise(values.get(name))
                except FieldRuleViolation as problem:
                    findings.append(FieldScanFinding(
                        party_id=row["id"], field=name, value=values.get(name), message=str(problem),
                        suggestion=problem.suggestion,
                    ))
        return findings

    def _change_catalog(self, actor: str, action: Callable[[FieldCatalog], T]) -> T:
        """Load the catalog (or start it), act on it, save; on a collision with another writer, re-run."""
        for attempt in range(self.conflict_retries + 1):
            catalog = self._catalog_or_new(actor)
            result = action(catalog)
            try:
                self._save(catalog)
            except ConcurrentUpdateError:
                if attempt == self.conflict_retries:
                    raise ConcurrentUpdateError(None, "the field catalog changed meanwhile") from None
                _back_off(attempt)
                continue
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _catalog_or_new(self, actor: str) -> FieldCatalog:
        try:
            catalog: Any = self._app.repository.get(CATALOG_ID)
        except AggregateNotFoundError:
            return FieldCatalog.start(actor=actor)
        return cast(FieldCatalog, catalog)

    def _catalog_version(self) -> int:
        """The catalog's current version (0 if none was started): one small query."""
        last = self._app.recorder.select_events(CATALOG_ID, desc=True, limit=1)
        return last[0].originator_version if last else 0

    def _current_fields(self) -> FieldSet:
        return self._fields_at(self._catalog_version())

    def _fields_at(self, version: int) -> FieldSet:
        """The active definitions at catalog ``version`` (cached: a version never changes once written)."""
        cached = self._catalog_versions.get(version)
        if cached is not None:
            return cached
        if version == 0:
            fields = FieldSet()
        else:
            try:
                catalog: Any = self._app.repository.get(CATALOG_ID, version=version)
            except AggregateNotFoundError:
                return FieldSet()
            fields = cast(FieldCatalog, catalog).fields()
        if len(self._catalog_versions) >= _CATALOG_CACHE_SIZE:
            self._catalog_versions.clear()
        self._catalog_versions[version] = fields
        return fields

    @staticmethod
    def _checked_profile(catalog: FieldSet, profile: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
        """``profile`` normalised by the catalog's profile traits; free-form while it defines none."""
        traits = catalog.section("profile")
        if not traits:
            return dict(profile)
        return traits.validate(profile, partial=partial)

    def _checked_bulk_profiles(self, commands: list[BulkUpdate]) -> list[BulkUpdate]:
        """Bulk update rows with their profile changes normalised; every bad row reported by index."""
        traits = self._current_fields().section("profile")
        if not traits or not any(cmd.profile for cmd in commands):
            return commands
        checked: list[BulkUpdate] = []
        errors: list[dict[str, Any]] = []
        for index, cmd in enumerate(commands):
            try:
                profile = traits.validate(cmd.profile, partial=True) if cmd.profile else {}
            except InvalidInput as error:
                errors += _row_errors(index, error)
                continue
            checked.append(cmd.model_copy(update={"profile": profile}) if profile else cmd)
        if errors:
            raise _rows_error(errors)
        return checked

    def _checked_bulk_registrations(self, rows: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
        """Registration rows with their profiles normalised by the catalog's traits (if it defines any).

        The bulk path records no custom field values: while the catalog has required custom fields,
        every row is refused (register such parties with :meth:`register_party` and ``fields=``).
        """
        catalog = self._current_fields()
        traits = catalog.section("profile")
        required = [n for n, d in catalog.section("custom").items() if d.required]
        if not traits and not required:
            return rows
        rows = list(rows)
        checked: list[Mapping[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, row in enumerate(rows):
            if required:
                message = (f"the custom fields {', '.join(required)} are required, and bulk registration "
                           "records no custom fields: register these parties one by one")
                errors.append({"loc": (index, "fields"), "msg": message, "type": "missing"})
                continue
            profile = row.get("profile") if isinstance(row, Mapping) else None
            if profile is not None and not isinstance(profile, Mapping):
                checked.append(row)  # the bulk validation refuses it, naming the row
                continue
            try:
                normalised = traits.validate(profile or {})
            except InvalidInput as error:
                errors += _row_errors(index, error)
                continue
            checked.append({**row, "profile": normalised} if profile is not None else row)
        if errors:
            raise _rows_error(errors)
        return checked

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
                break
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

    def _save(self, *aggregates: Aggregate) -> list[Recording[UUID]]:
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


def _split_command(given: Mapping[str, Any], rest: str) -> dict[str, Any]:
    """``actor`` and ``effective_at`` as command fields; everything else under ``rest``."""
    command = {k: v for k, v in given.items() if k in ("actor", "effective_at")}
    return {**command, rest: {k: v for k, v in given.items() if k not in command}}


def _changed_definition(current: FieldDefinition, changes: Mapping[str, Any]) -> FieldDefinition:
    """``current`` with ``changes`` applied, validated as a whole; name, kind and section stay."""
    if changes.get("name", current.name) != current.name:
        message = f"{current.name}: a field is never renamed; retire it and define a new one"
        raise InvalidInput(message, [{"loc": ("name",), "msg": message, "type": "name_change"}])
    for rule in ("kind", "section"):
        old, new = str(getattr(current, rule)), str(changes.get(rule, getattr(current, rule)))
        if new != old:
            message = (f"{current.name}: the {rule} of a field never changes ({old} → {new}); "
                       "retire it and define a new field")
            raise InvalidInput(message, [{"loc": (rule,), "msg": message, "type": f"{rule}_change"}])
    try:
        return FieldDefinition.model_validate({**current.model_dump(mode="json"), **changes})
    except pydantic.ValidationError as error:
        raise invalid_input(error) from None


def _row_errors(index: int, error: InvalidInput) -> list[dict[str, Any]]:
    return [{**e, "loc": (index, "profile", *e.get("loc", ()))} for e in error.errors]


def _rows_error(errors: list[dict[str, Any]]) -> InvalidInput:
    summary = "; ".join(f"row {e['loc'][0]}: {e['msg']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return InvalidInput(f"bulk input: {summary}{more}", errors)


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
