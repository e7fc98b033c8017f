"""The ``CleanUp`` aggregate: one real run of the quarterly clean-up, and what was put back since.

A run is recorded as one event, :class:`CleanUp.Ran`: the clean-up policy and the hygiene policy it read
(names, versions, settings), the report's counts before and after, every action taken
(:class:`~crmcore.policies.cleanup.CleanUpAction` as JSON) and the completion task opened for each party.
The actions' own events (a party set aside, an address suppressed, a task planned) are saved in the same
transaction by the caller. Reverting the run for one party records :class:`CleanUp.Reverted` with what was
undone; a party is reverted once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from crmcore._ids import new_uuid7
from crmcore.aggregates.party import _check_not_future, _next_effective_time
from crmcore.exceptions import IllegalTransition
from crmcore.policies.cleanup import CleanUpAction

__all__ = ["CleanUp"]


class CleanUp(Aggregate):
    """One run of the quarterly clean-up (see the module docstring)."""

    class Event(Aggregate.Event):
        """Every clean-up event says who did it and when it took effect."""

        actor: str
        effective_at: datetime

    class Ran(Event, Aggregate.Created):
        policy: dict[str, Any]
        hygiene_policy: dict[str, Any]
        counts_before: dict[str, Any]
        counts_after: dict[str, Any]
        actions: list[list[Any]]
        tasks: dict[str, str]

    class Reverted(Event):
        party_id: str
        undone: list[list[Any]]
        reason: str | None

    @staticmethod
    def create_id(**_: Any) -> UUID:
        """Runs get time-ordered UUIDv7 ids."""
        return new_uuid7()

    @event(Ran)
    def __init__(
        self,
        *,
        policy: dict[str, Any],
        hygiene_policy: dict[str, Any],
        counts_before: dict[str, Any],
        counts_after: dict[str, Any],
        actions: list[list[Any]],
        tasks: dict[str, str],
        actor: str,
        effective_at: datetime,
    ) -> None:
        self.policy, self.hygiene_policy = policy, hygiene_policy
        self.counts_before, self.counts_after = counts_before, counts_after
        self.actions = [CleanUpAction.from_json(a) for a in actions]
        self._by_party: dict[str, list[CleanUpAction]] = {}
        for action in self.actions:
            self._by_party.setdefault(action.party_id, []).append(action)
        #: the completion task opened for each party, by party id text
        self.tasks = {party: UUID(task) for party, task in tasks.items()}
        #: the parties put back since, with what was undone
        self.reverted: dict[str, list[CleanUpAction]] = {}
        #: who ran it, and the moment it read the report and took its actions
        self.actor, self.at = actor, effective_at
        self.last_effective_at = effective_at

    @property
    def policy_stamp(self) -> dict[str, Any]:
        """The clean-up policy's name and version, as its decisions about addresses record them."""
        return {"name": self.policy["name"], "version": self.policy["version"]}

    @classmethod
    def run(
        cls,
        *,
        policy: Mapping[str, Any],
        hygiene_policy: Mapping[str, Any],
        counts_before: Mapping[str, Any],
        counts_after: Mapping[str, Any],
        actions: Sequence[CleanUpAction],
        tasks: Mapping[str, UUID],
        actor: str,
        effective_at: datetime,
    ) -> CleanUp:
        """Record a run: what it read, what it counted and what it did."""
        return cls(policy=dict(policy), hygiene_policy=dict(hygiene_policy),
                   counts_before=dict(counts_before), counts_after=dict(counts_after),
                   actions=[a.to_json() for a in actions],
                   tasks={party: str(task) for party, task in tasks.items()}, actor=actor,
                   effective_at=_check_not_future(effective_at))

    def actions_on(self, party_id: str) -> list[CleanUpAction]:
        """What the run did to ``party_id`` (id text), in the order recorded."""
        return list(self._by_party.get(party_id, ()))

    @property
    def parties(self) -> list[str]:
        """The parties the run touched, in id order."""
        return sorted(self._by_party)

    def revert(
        self, *, party_id: str, undone: Sequence[CleanUpAction], actor: str, reason: str | None = None,
        effective_at: datetime | None = None,
    ) -> None:
        """Record that what the run did to ``party_id`` was put back (``undone``: the actions actually
        undone; one whose effect was already gone — the party restored by hand meanwhile — is left out).

        Raises :class:`IllegalTransition` for a party the run did not touch or already reverted.
        """
        if not self.actions_on(party_id):
            raise IllegalTransition(f"clean-up {self.id} did not touch party {party_id}")
        if party_id in self.reverted:
            raise IllegalTransition(f"clean-up {self.id} was already reverted for party {party_id}")
        at = _next_effective_time(effective_at, self.last_effective_at, "clean-up")
        self._reverted(party_id=party_id, undone=[a.to_json() for a in undone], reason=reason, actor=actor,
                       effective_at=at)

    @event(Reverted)
    def _reverted(
        self, party_id: str, undone: list[list[Any]], reason: str | None, actor: str, effective_at: datetime,
    ) -> None:
        self.reverted[party_id] = [CleanUpAction.from_json(a) for a in undone]
        self.last_effective_at = effective_at

