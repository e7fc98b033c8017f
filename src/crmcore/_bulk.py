"""The bulk path: validate everything first, then build stored events directly, in batches.

Building ``Party`` objects to collect their ``Registered`` events costs more than the insert itself. Here
the stored form is produced directly, in exactly the format the application's JSON transcoder writes and
reads (``{"_type_": "datetime_iso", ...}``), then compressed and encrypted as configured.

Rows are validated a chunk at a time against the same fields, types and constraints as
:class:`~crmcore.commands.RegisterParty` (derived from it, but validated into plain dicts rather than model
objects, which halves the cost), then against the registration rules. Only when every row has passed is
anything written: each batch's events are built just before it is written (on SQLite, while the previous
batch's commit waits for the disk).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import Enum
from typing import Annotated, Any, NotRequired, Required, TypeVar
from uuid import UUID

import orjson
import pydantic
from eventsourcing.persistence import ApplicationRecorder, DatetimeAsISO, JSONTranscoder, Mapper, StoredEvent
from eventsourcing.utils import get_topic
from pydantic import BaseModel, ConfigDict, TypeAdapter
from typing_extensions import TypedDict

from crmcore._ids import reserve_ticks, uuid7s
from crmcore.aggregates.claim import IdentityClaim, claim_id
from crmcore.aggregates.party import CLOCK_SKEW_SECONDS, Party, identity_keys_of
from crmcore.commands import RegisterParty, RegistrationCore, invalid_input
from crmcore.exceptions import DuplicateParty, IllegalTransition, InvalidInput
from crmcore.policies import lifecycle
from crmcore.values import PartyKind, Stage, utc_now

__all__ = [
    "bulk_register",
    "registered_events",
    "registration_problem",
    "validate_all",
    "validate_registrations",
    "validate_rows",
]

M = TypeVar("M", bound=BaseModel)
_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}
_REGISTERED_TOPIC = get_topic(Party.Registered)
_CLAIM_TOPIC = get_topic(IdentityClaim)
_CLAIMED_TOPIC = get_topic(IdentityClaim.Claimed)
# The mapper stores an event class's version when above 1; without it, reading upcasts from version 1.
_CLASS_VERSION: dict[str, int] = (
    {"class_version": Party.Registered.class_version} if getattr(Party.Registered, "class_version", 1) > 1
    else {}
)
_PARTY_TOPIC = get_topic(Party)
_DATETIME = "datetime_iso"

#: Rows validated and turned into stored events per step (independent of the write batch size).
CHUNK_SIZE = 1000


def validate_rows(model: type[M], rows: Iterable[Mapping[str, Any]]) -> list[M]:
    """Validate every row's fields as ``model`` in one pass; the first bad rows are reported by index.

    Registrations go through :func:`prepare_registrations`, which also applies the registration rules.
    """
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    try:
        commands: list[M] = adapter.validate_python(list(rows))
    except pydantic.ValidationError as error:
        raise invalid_input(error, "bulk input: ") from None
    return commands


# ---------------------------------------------------------------------- registration rows as plain dicts


def _row_schema(model: type[BaseModel]) -> type[Any] | None:
    """A ``TypedDict`` with exactly ``model``'s fields, types and constraints, or None if it cannot be one.

    Validating into dicts skips building model objects. Only a model whose fields are its whole contract
    qualifies: one with validators of its own is validated as itself.
    """
    decorators = model.__pydantic_decorators__
    if any((decorators.validators, decorators.field_validators, decorators.root_validators,
            decorators.model_validators, decorators.computed_fields)):
        return None
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if info.alias or info.validation_alias:
            return None
        annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[name] = Required[annotation] if info.is_required() else NotRequired[annotation]
    schema = TypedDict(f"{model.__name__}Row", fields)  # type: ignore[misc]
    config = {k: v for k, v in model.model_config.items() if k not in ("frozen", "title")}
    schema.__pydantic_config__ = ConfigDict(**config)  # type: ignore[attr-defined, typeddict-item]
    return schema


_REGISTRATION_ROW = _row_schema(RegistrationCore)
_CORE_FIELDS = frozenset(RegistrationCore.model_fields)
_REGISTRATION_DEFAULTS: dict[str, Any] = {
    name: info.get_default(call_default_factory=True)
    for name, info in RegistrationCore.model_fields.items()
    if not info.is_required()
}
#: Looks up the claims that exist on identity keys (``email:…``) and returns them by key.
ClaimLookup = Callable[[Sequence[str]], Mapping[str, IdentityClaim]]
_REGISTRATION_ADAPTER: TypeAdapter[Any] = TypeAdapter(
    list[_REGISTRATION_ROW] if _REGISTRATION_ROW is not None else list[RegisterParty]  # type: ignore[valid-type]
)


def _registrable(kind: PartyKind, stage: Stage) -> bool:
    try:
        lifecycle.check_registration(kind, stage)
    except IllegalTransition:
        return False
    return True


#: (kind, stage) pairs a party may be registered at, as the lifecycle rules say.
_REGISTRABLE = frozenset((kind, stage) for kind in PartyKind for stage in Stage if _registrable(kind, stage))


def validate_registrations(
    rows: Sequence[Mapping[str, Any]], offset: int = 0
) -> list[dict[str, Any]]:
    """Validate registration rows' fields into dicts holding only the fields given (no defaults).

    Rows with identity values (or a person named by given and family name) are validated as
    :class:`RegisterParty` and carry their stored ``identity``; the others take the fast path.
    Raises :class:`InvalidInput` naming the bad rows by index (``offset`` is added to each index).
    The rules beyond field types (:func:`registration_problem`) are checked by :func:`validate_all`.
    """
    plain = [
        i for i, row in enumerate(rows)
        if not isinstance(row, Mapping) or ("name" in row and _CORE_FIELDS.issuperset(row))
    ]
    if len(plain) == len(rows):
        return _validate_plain(rows, offset)
    validated: list[Any] = [None] * len(rows)
    errors: list[dict[str, Any]] = []
    try:
        for i, checked in zip(plain, _validate_plain([rows[i] for i in plain], 0), strict=True):
            validated[i] = checked
    except InvalidInput as error:
        errors += [{**e, "loc": (plain[e["loc"][0]], *e["loc"][1:])} for e in error.errors]
    plain_set = set(plain)
    for index, row in enumerate(rows):
        if index in plain_set:
            continue
        try:
            cmd = RegisterParty.model_validate(row)
        except pydantic.ValidationError as error:
            errors += [{"loc": (index, *e["loc"]), "msg": e["msg"], "type": e["type"]}
                       for e in error.errors()]
            continue
        fields = {k: getattr(cmd, k) for k in cmd.model_fields_set if k in _CORE_FIELDS}
        fields["name"] = cmd.display_name
        identity = cmd.stored_identity()
        if identity:
            fields["identity"] = identity
        validated[index] = fields
    if errors:
        raise _bulk_error([{**e, "loc": _shift(tuple(e["loc"]), offset)} for e in errors])
    return validated


def _validate_plain(rows: Sequence[Mapping[str, Any]], offset: int) -> list[dict[str, Any]]:
    try:
        validated = _REGISTRATION_ADAPTER.validate_python(rows)
    except pydantic.ValidationError as error:
        raise _bulk_error([
            {"loc": _shift(tuple(e["loc"]), offset), "msg": e["msg"], "type": e["type"]}
            for e in error.errors()
        ]) from None
    if _REGISTRATION_ROW is None:
        return [cmd.model_dump(exclude_unset=True) for cmd in validated]
    return validated  # type: ignore[no-any-return]


def check_identity_keys(
    validated: Sequence[Mapping[str, Any]], lookup: ClaimLookup | None
) -> tuple[dict[int, list[str]], dict[str, IdentityClaim]]:
    """Each row's identity keys (by row index) and the released claims the rows will take.

    Raises :class:`InvalidInput` when two rows share an identifier and :class:`DuplicateParty` when a
    stored party holds one (naming the row); nothing is stored.
    """
    keys_by_row: dict[int, list[str]] = {}
    first_row: dict[str, int] = {}
    errors: list[dict[str, Any]] = []
    for index, row in enumerate(validated):
        identity: Mapping[str, Any] | None = row.get("identity")
        if not identity:
            continue
        keys = sorted(identity_keys_of(dict(identity)))
        keys_by_row[index] = keys
        for key in keys:
            if key in first_row:
                errors.append({"loc": (index,), "msg": f"{key} is also in row {first_row[key]}",
                               "type": "duplicate"})
            else:
                first_row[key] = index
    if errors:
        raise _bulk_error(errors)
    if not first_row or lookup is None:
        return keys_by_row, {}
    existing = lookup(sorted(first_row))
    for key, claim in existing.items():
        if claim.holder is not None:
            field, value = key.split(":", 1)
            refused = DuplicateParty(claim.holder, field, value)
            refused.args = (f"bulk input: row {first_row[key]}: {refused}",)
            raise refused
    return keys_by_row, dict(existing)


def _shift(loc: tuple[Any, ...], offset: int) -> tuple[Any, ...]:
    return (loc[0] + offset, *loc[1:]) if loc and isinstance(loc[0], int) else loc


def _bulk_error(errors: list[dict[str, Any]]) -> InvalidInput:
    """One :class:`InvalidInput` for the bad rows: ``bulk input: row 3: name: <problem>; ...``."""

    def where(loc: tuple[Any, ...]) -> str:
        if loc and isinstance(loc[0], int):
            return f"row {loc[0]}: " + "".join(f"{p}: " for p in loc[1:])
        return "".join(f"{p}: " for p in loc)

    summary = "; ".join(f"{where(e['loc'])}{e['msg']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return InvalidInput(f"bulk input: {summary}{more}", errors)


def registration_problem(row: Mapping[str, Any], latest: datetime) -> str | None:
    """What ``Party.register`` would refuse in a validated row (None if nothing)."""
    kind = row["kind"]
    if (kind, row.get("stage", Stage.SUSPECT)) not in _REGISTRABLE:
        return f"a {kind.value} cannot be registered as {Stage(row['stage']).value}"
    if row.get("organization_name") is not None and kind is not PartyKind.PERSON:
        return "organization_name is for a person; an organization names a contact_name"
    if row.get("contact_name") is not None and kind is not PartyKind.ORGANIZATION:
        return "contact_name is for an organization; a person names an organization_name"
    effective_at = row.get("effective_at")
    if effective_at is not None and effective_at > latest:
        return f"effective time {effective_at.isoformat()} is in the future"
    return None


# ---------------------------------------------------------------------- the whole bulk registration

Row = tuple[str, int, str, bytes]
#: Told of each committed batch: its stored events and their notification ids (positions).
Committed = Callable[[list[StoredEvent], Sequence[int] | None], None]


def bulk_register(
    recorder: ApplicationRecorder,
    mapper: Mapper[Any],
    rows: Iterable[Mapping[str, Any]],
    batch_size: int,
    committed: Committed | None = None,
    claims: ClaimLookup | None = None,
) -> list[UUID]:
    """Register a party per row: validate every row, then store ``batch_size`` events per transaction.

    Raises :class:`InvalidInput` listing every bad row by index, before anything is written. Events are
    built batch by batch as they are written; on SQLite, building the next batch overlaps the commit
    of the previous one (see :meth:`~crmcore.stores.BatchedSQLiteApplicationRecorder.insert_row_batches`).

    All of this creates many objects, none in reference cycles, so the cyclic garbage collector is paused
    meanwhile (:func:`_gc_paused`): otherwise its full collections, triggered by the growing number of
    surviving objects, walk every object of the process, all the input rows included, and take about a
    third of the time.
    """
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be at least 1, not {batch_size}")
    with _gc_paused():
        validated = validate_all(rows)
        keys_by_row, released = check_identity_keys(validated, claims)
        fast = _fast_json(mapper)
        batches = _encoded_batches(validated, mapper, batch_size, keys_by_row, released)
        if not fast:  # a transcoder of the caller's choosing might refuse a value: find out before writing
            batches = iter(list(batches))
        ids: list[UUID] = []
        if _is_batched_sqlite(recorder):
            def tell(rows: Sequence[Row], positions: Sequence[int]) -> None:
                assert committed is not None  # only handed over with one
                committed(_stored(rows), positions)

            recorder.insert_row_batches(  # type: ignore[attr-defined]
                (_collect(ids, batch) for batch in batches), tell if committed is not None else None
            )
        else:
            for batch_ids, batch in batches:
                ids += batch_ids
                stored = _stored(batch, batch_ids)
                positions = recorder.insert_events(stored)
                if committed is not None:
                    committed(stored, positions)
    return ids


def _collect(ids: list[UUID], batch: tuple[list[UUID], list[Row]]) -> list[Row]:
    ids += batch[0]
    return batch[1]


def _is_batched_sqlite(recorder: ApplicationRecorder) -> bool:
    from crmcore.stores import BatchedSQLiteApplicationRecorder

    return isinstance(recorder, BatchedSQLiteApplicationRecorder)


def validate_all(rows: Iterable[Mapping[str, Any]], *, chunk_size: int = CHUNK_SIZE) -> list[dict[str, Any]]:
    """Validate every registration row: field types, then the rules ``Party.register`` applies.

    Returns the rows as dicts holding the fields given (no defaults filled in). Raises
    :class:`InvalidInput` listing every bad row by index.
    """
    rows = rows if isinstance(rows, Sequence) else list(rows)
    validated: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    latest = utc_now() + timedelta(seconds=CLOCK_SKEW_SECONDS)
    registrable, suspect, person = _REGISTRABLE, Stage.SUSPECT, PartyKind.PERSON
    for start in range(0, len(rows), chunk_size):
        try:
            chunk = validate_registrations(rows[start : start + chunk_size], start)
        except InvalidInput as error:
            errors += error.errors  # keep going: the caller hears of every bad row at once
            continue
        for index, row in enumerate(chunk, start):
            # The common case inline; registration_problem() says what is wrong otherwise.
            get, kind = row.get, row["kind"]
            effective_at = get("effective_at")
            if (
                (kind, get("stage", suspect)) not in registrable
                or get("contact_name" if kind is person else "organization_name") is not None
                or (effective_at is not None and effective_at > latest)
            ):
                problem = registration_problem(row, latest)
                if problem is not None:
                    errors.append({"loc": (index,), "msg": problem, "type": "registration"})
        if not errors:
            validated += chunk
    if errors:
        raise _bulk_error(errors)
    return validated


def _encoded_batches(
    validated: list[dict[str, Any]],
    mapper: Mapper[Any],
    batch_size: int,
    keys_by_row: Mapping[int, list[str]] | None = None,
    released: Mapping[str, IdentityClaim] | None = None,
) -> Iterator[tuple[list[UUID], list[Row]]]:
    """New ids and stored ``(id hex, version, topic, state)`` rows, batch by batch, for validated rows.

    A batch also holds the claim events of its parties' identifiers (``keys_by_row``), taking over the
    ``released`` claims that exist. Consumed rows are dropped from ``validated`` as it goes, so their
    memory holds the next payloads.
    """
    first_tick = reserve_ticks(len(validated))
    encode = _encoder(mapper)
    for start in range(0, len(validated), batch_size):
        part = validated[start : start + batch_size]
        validated[start : start + len(part)] = [None] * len(part)  # type: ignore[list-item]
        batch_ids, hexes = uuid7s(first_tick + start, len(part))
        rows = encode(hexes, part)
        if keys_by_row:
            rows += _claim_rows(mapper, batch_ids, start, keys_by_row, released or {})
        yield batch_ids, rows
        del part


def _claim_rows(
    mapper: Mapper[Any], ids: Sequence[UUID], start: int, keys_by_row: Mapping[int, list[str]],
    released: Mapping[str, IdentityClaim],
) -> list[Row]:
    """The claim events of a batch's parties: new claims written directly, released ones taken over."""
    rows: list[Row] = []
    now = utc_now()
    fast = _fast_json(mapper)
    stamp: Any = {"_type_": _DATETIME, "_data_": now} if fast else now
    compressor, cipher = mapper.compressor, mapper.cipher
    for offset, party_id in enumerate(ids):
        for key in keys_by_row.get(start + offset, ()):
            claim = released.get(key)
            if claim is None and fast:
                payload = orjson.dumps({
                    "timestamp": stamp, "originator_topic": _CLAIM_TOPIC, "actor": "bulk",
                    "effective_at": stamp, "key": key,
                    "holder": {"_type_": "uuid_hex", "_data_": party_id.hex},
                })
                if compressor:
                    payload = compressor.compress(payload)
                if cipher:
                    payload = cipher.encrypt(payload)
                rows.append((claim_id(key).hex, 1, _CLAIMED_TOPIC, payload))
                continue
            if claim is None:
                claim = IdentityClaim(key=key, holder=party_id, actor="bulk", effective_at=now)
            else:
                claim.take(party_id, actor="bulk", effective_at=now)
            for event in claim.collect_events():
                stored = mapper.to_stored_event(event)
                hex_id = UUID(str(stored.originator_id)).hex
                rows.append((hex_id, stored.originator_version, stored.topic, stored.state))
    return rows


def _fast_json(mapper: Mapper[Any]) -> bool:
    """Whether the mapper's transcoder reads exactly what the orjson fast path writes."""
    transcoder = mapper.transcoder
    return type(transcoder) is JSONTranscoder and isinstance(transcoder.names.get(_DATETIME), DatetimeAsISO)


def _encoder(mapper: Mapper[Any]) -> Callable[[Sequence[str], Sequence[dict[str, Any]]], list[Row]]:
    """A function building ``(id hex, 1, topic, state)`` rows the way ``mapper`` would store them."""
    compressor, cipher, transcoder = mapper.compressor, mapper.cipher, mapper.transcoder
    fast = _fast_json(mapper)
    topic = _REGISTERED_TOPIC
    dumps = orjson.dumps

    def encode(hexes: Sequence[str], validated: Sequence[dict[str, Any]]) -> list[Row]:
        now = utc_now()
        stamp: Any = {"_type_": _DATETIME, "_data_": now} if fast else now
        template = {
            "actor": None,
            "kind": None,
            "name": None,
            **_REGISTRATION_DEFAULTS,
            "timestamp": stamp,
            "originator_topic": _PARTY_TOPIC,
            "effective_at": stamp,
            "qualified_from": None,
            "identity": {},
            **_CLASS_VERSION,
        }
        out: list[Row] = []
        for hex_id, row in zip(hexes, validated, strict=True):
            state = {**template, **row}
            effective_at = row.get("effective_at")
            if effective_at is None:
                state["effective_at"] = stamp
            elif fast:
                state["effective_at"] = {"_type_": _DATETIME, "_data_": effective_at}
            profile = row.get("profile")
            if profile and None in profile.values():
                state["profile"] = {k: v for k, v in profile.items() if v is not None}
            try:
                payload = dumps(state) if fast else transcoder.encode(_native(state))
            except TypeError:  # orjson refuses an integer beyond 64 bits: the transcoder writes those
                payload = transcoder.encode(_native(state))
            if compressor:
                payload = compressor.compress(payload)
            if cipher:
                payload = cipher.encrypt(payload)
            elif not compressor:
                # orjson hands back its 4 KiB working buffer with a shorter length: keep a right-sized
                # copy, so a batch holds kilobytes rather than megabytes and the buffer is reused.
                payload = b"%b" % payload
            out.append((hex_id, 1, topic, payload))
        return out

    return encode


def _native(state: dict[str, Any]) -> dict[str, Any]:
    """The event state with plain values, for a transcoder to encode in its own way."""
    native = {}
    for key, value in state.items():
        if isinstance(value, dict) and value.keys() == {"_type_", "_data_"}:
            value = value["_data_"]
        elif isinstance(value, Enum):
            value = value.value
        native[key] = value
    return native


def _stored(rows: Sequence[Row], ids: Sequence[UUID] = ()) -> list[StoredEvent]:
    """Stored events of ``rows``; the first ``len(ids)`` rows are those parties' (no id parsing)."""
    known = [
        StoredEvent(originator_id=party_id, originator_version=version, topic=topic, state=state)
        for party_id, (_, version, topic, state) in zip(ids, rows, strict=False)
    ]
    return known + [
        StoredEvent(originator_id=UUID(hex_id), originator_version=version, topic=topic, state=state)
        for hex_id, version, topic, state in rows[len(known):]
    ]


def registered_events(
    rows: Sequence[Mapping[str, Any] | RegisterParty], mapper: Mapper[Any]
) -> tuple[list[StoredEvent], list[UUID]]:
    """The stored ``Party.Registered`` events for ``rows`` (validated here) and the new parties' ids."""
    plain = [r.model_dump(exclude_unset=True) if isinstance(r, RegisterParty) else r for r in rows]
    validated = validate_all(plain)
    ids: list[UUID] = []
    stored: list[StoredEvent] = []
    for batch_ids, batch in _encoded_batches(validated, mapper, max(len(validated), 1)):
        ids += batch_ids
        stored += _stored(batch, batch_ids)
    return stored, ids


# ---------------------------------------------------------------------- the garbage collector


_GC_LOCK = threading.Lock()
_gc_pauses = 0
_gc_paused_by_us = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (if it runs) until the last overlapping pause ends.

    Reference counting still frees everything that is not in a cycle. Pauses from several threads nest:
    the collector is enabled again only if it was enabled when the first began.
    """
    global _gc_pauses, _gc_paused_by_us
    with _GC_LOCK:
        if _gc_pauses == 0:
            _gc_paused_by_us = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_paused_by_us:
                gc.enable()
