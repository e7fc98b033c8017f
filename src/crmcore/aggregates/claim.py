"""``IdentityClaim``: who holds a normalised e-mail address, phone number or VAT number.

One claim per identifier, with an id derived from it (``uuid5``), so the store itself refuses a second
holder: two writers claiming the same identifier at once both try to record version 1 of the same
aggregate, and the second save fails. A party's registration saves its claims in the same atomic save.
"""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

__all__ = ["IdentityClaim", "claim_id"]

_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmcore/identity-claims")


def claim_id(key: str) -> UUID:
    """The id of the claim on ``key`` (``email:…``, ``phone:…`` or ``vat:…``)."""
    return uuid5(_NAMESPACE, key)


class IdentityClaim(Aggregate):
    """The party (if any) holding one normalised identifier."""

    class Event(Aggregate.Event):
        actor: str
        effective_at: datetime

    class Claimed(Event, Aggregate.Created):
        key: str
        holder: UUID

    class Transferred(Event):
        holder: UUID

    class Released(Event):
        pass

    @staticmethod
    def create_id(key: str, **_: object) -> UUID:
        return claim_id(key)

    @event(Claimed)
    def __init__(self, *, key: str, holder: UUID, actor: str, effective_at: datetime) -> None:
        self.key = key
        self.holder: UUID | None = holder

    @property
    def field(self) -> str:
        """``email``, ``phone`` or ``vat``."""
        return self.key.split(":", 1)[0]

    def take(self, holder: UUID, *, actor: str, effective_at: datetime) -> bool:
        """Make ``holder`` the holder; returns False if it already is."""
        if self.holder == holder:
            return False
        self._transferred(holder=holder, actor=actor, effective_at=effective_at)
        return True

    def release(self, *, actor: str, effective_at: datetime) -> bool:
        """Free the identifier; returns False if nobody held it."""
        if self.holder is None:
            return False
        self._released(actor=actor, effective_at=effective_at)
        return True

    @event(Transferred)
    def _transferred(self, holder: UUID, actor: str, effective_at: datetime) -> None:
        self.holder = holder

    @event(Released)
    def _released(self, actor: str, effective_at: datetime) -> None:
        self.holder = None
