"""The bulk path: validate everything first, then build stored events directly, in batches.

Building ``Party`` objects to collect their ``Registered`` events costs more than the insert itself. Here
the stored form is produced directly, in exactly the format the application's JSON transcoder writes and
reads (``{"_type_": "datetime_iso", ...}``), then compressed and encrypted as configured.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar
from uuid import UUID

import orjson
import pydantic
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic
from pydantic import BaseModel, TypeAdapter

from crmcore.aggregates.party import Party
from crmcore.commands import RegisterParty, invalid_input
from crmcore.policies import lifecycle
from crmcore.values import PartyKind, utc_now

__all__ = ["registered_events", "uuid7_batch", "validate_rows"]

M = TypeVar("M", bound=BaseModel)
_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}
_REGISTERED_TOPIC = get_topic(Party.Registered)
_PARTY_TOPIC = get_topic(Party)


def validate_rows(model: type[M], rows: Iterable[Mapping[str, Any]]) -> list[M]:
    """Validate every row in one pass; the first bad rows are reported by index."""
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    try:
        commands: list[M] = adapter.validate_python(list(rows))
    except pydantic.ValidationError as error:
        raise invalid_input(error, "bulk input: ") from None
    if model is RegisterParty:
        for index, cmd in enumerate(commands):
            _check_registration(index, cmd)  # type: ignore[arg-type]
    return commands


def _check_registration(index: int, cmd: RegisterParty) -> None:
    try:
        lifecycle.check_registration(cmd.kind, cmd.stage)
        if cmd.organization_name is not None and cmd.kind is not PartyKind.PERSON:
            raise ValueError("organization_name is for a person")
        if cmd.contact_name is not None and cmd.kind is not PartyKind.ORGANIZATION:
            raise ValueError("contact_name is for an organization")
        if cmd.effective_at is not None and (cmd.effective_at - utc_now()).total_seconds() > 300:
            raise ValueError("effective time in the future")
    except ValueError as error:
        from crmcore.exceptions import InvalidInput

        raise InvalidInput(
            f"bulk input: row {index}: {error}",
            [{"loc": (index,), "msg": str(error), "type": "registration"}],
        ) from None


def uuid7_batch(count: int) -> list[UUID]:
    """``count`` time-ordered UUIDv7 ids, strictly increasing, drawn in one go (RFC 9562, method 1)."""
    millis = time.time_ns() // 1_000_000
    random = os.urandom(8 * count)
    ids = []
    for i in range(count):
        # 48-bit milliseconds | version 7 | 12-bit counter | variant | 62 random bits
        rand_b = int.from_bytes(random[8 * i : 8 * i + 8], "big") & ((1 << 62) - 1)
        value = (millis << 80) | (0x7 << 76) | ((i & 0xFFF) << 64) | (0b10 << 62) | rand_b
        if i and i % 0x1000 == 0:
            millis += 1  # the 12-bit counter wrapped: move to the next millisecond to stay ordered
        ids.append(UUID(int=value))
    return ids


def _dt(value: Any) -> dict[str, str]:
    return {"_type_": "datetime_iso", "_data_": value.isoformat()}


def registered_events(
    commands: Sequence[RegisterParty], mapper: Mapper[Any]
) -> tuple[list[StoredEvent], list[UUID]]:
    """The stored ``Party.Registered`` events for ``commands`` and the new parties' ids."""
    ids = uuid7_batch(len(commands))
    now = utc_now()
    recorded = _dt(now)
    compressor, cipher = mapper.compressor, mapper.cipher
    stored: list[StoredEvent] = []
    dumps = orjson.dumps
    for party_id, cmd in zip(ids, commands, strict=True):
        state = {
            "timestamp": recorded,
            "originator_topic": _PARTY_TOPIC,
            "actor": cmd.actor,
            "effective_at": _dt(cmd.effective_at or now),
            "kind": cmd.kind.value,
            "stage": cmd.stage.value,
            "name": cmd.name,
            "organization_name": cmd.organization_name,
            "contact_name": cmd.contact_name,
            "channel": cmd.channel.value if cmd.channel else None,
            "owner": cmd.owner,
            "profile": {k: v for k, v in cmd.profile.items() if v is not None},
            "qualified_from": None,
        }
        payload = dumps(state)
        if compressor:
            payload = compressor.compress(payload)
        if cipher:
            payload = cipher.encrypt(payload)
        stored.append(StoredEvent(originator_id=party_id, originator_version=1,
                                  topic=_REGISTERED_TOPIC, state=payload))
    return stored, ids
