"""The chain of links that makes the stored log tamper-evident (design 07 § 2).

Each stored event gets a row ``(position, prev, link)`` in a table beside the events, written in the same
transaction: ``link`` is an HMAC-SHA256, under the store's audit key, of the previous link, both positions
and the event exactly as stored (originator id, version, topic, state bytes). Changing any byte of a stored
event, removing one, or reordering them breaks the chain at that event; recomputing the chain needs the
audit key, kept outside the database.

This module holds the link function and what every recorder shares: keeping the head, and chaining a
run of newly inserted events (:class:`Chainer`). The recorders call it inside their insert transaction;
:mod:`crmcore.verification` walks the chain.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

__all__ = ["CHAIN_SUFFIX", "GENESIS", "Chainer", "chain_table_name", "id_bytes", "link_of"]

#: The chain table of an events table is named after it with this suffix.
CHAIN_SUFFIX = "_chain"
#: What every link's message starts with: the scheme and its version.
SCHEME = b"crmcore-chain-1"
#: The "previous link" of the first event.
GENESIS = bytes(32)

#: A chain row: (position, previous position, link).
ChainRow = tuple[int, int, bytes]


def chain_table_name(events_table: str) -> str:
    """The name of the chain table beside ``events_table``."""
    return f"{events_table}{CHAIN_SUFFIX}"


def id_bytes(originator_id: UUID | str) -> bytes:
    """An originator id as the chain reads it: a UUID (however the store gives it: the UUID, its text or
    its 32 hex digits) as its 16 bytes; any other text id as its UTF-8 bytes. Length-prefixed, so no two
    ids read the same."""
    if isinstance(originator_id, UUID):
        raw = originator_id.bytes
    else:
        try:
            raw = UUID(str(originator_id)).bytes
        except ValueError:
            raw = str(originator_id).encode()
    return len(raw).to_bytes(4, "big") + raw


def link_of(
    key: bytes, previous_link: bytes, prev: int, position: int, originator_id: UUID | str, version: int,
    topic: str, state: bytes,
) -> bytes:
    """The link of the event stored at ``position`` after the one at ``prev`` (0: none) whose link was
    ``previous_link`` (:data:`GENESIS` for the first)."""
    topic_bytes = topic.encode()
    message = b"".join((
        SCHEME, previous_link, prev.to_bytes(8, "big"), position.to_bytes(8, "big"), id_bytes(originator_id),
        version.to_bytes(8, "big", signed=True), len(topic_bytes).to_bytes(4, "big"), topic_bytes,
        bytes(state),
    ))
    return hmac.new(key, message, hashlib.sha256).digest()


class Chainer:
    """Computes the chain rows of newly inserted events under one audit key."""

    def __init__(self, key: bytes = b"") -> None:
        self.key = key

    def rows(
        self, head: tuple[int, bytes], events: Iterable[tuple[int, Any, int, str, bytes]],
    ) -> list[ChainRow]:
        """The chain rows of ``events`` — ``(position, originator id, version, topic, state)`` in position
        order, all after ``head`` (the last chained ``(position, link)``; ``(0, GENESIS)`` for none)."""
        prev, link = head
        found: list[ChainRow] = []
        key = self.key
        for position, originator_id, version, topic, state in events:
            link = link_of(key, link, prev, position, originator_id, version, topic, state)
            found.append((position, prev, link))
            prev = position
        return found


def paired(
    positions: Sequence[int], events: Sequence[Any],
) -> list[tuple[int, Any, int, str, bytes]]:
    """``(position, originator id, version, topic, state)`` of stored events and their positions."""
    return [(p, e.originator_id, e.originator_version, e.topic, e.state)
            for p, e in sorted(zip(positions, events, strict=True), key=lambda pe: pe[0])]
