"""The quarterly clean-up policy: given what the hygiene report says about each party, what to do.

DOMAIN.md, "Data hygiene": contacts that made no progress for 2-3 times the average time a contact takes
to be worked are **set aside, or moved to the generic newsletter list**; hard and soft bounces are
**excluded from mailings**; each user **fills the empty fields** of their own contacts every quarter. The
policy turns those into actions, one party at a time, from plain facts (:class:`Candidate`), so the same
plan comes out of a dry run, a real run and a what-if over history:

- a stale party not yet set aside: ``set_aside`` (reason ``stale``) or ``newsletter`` (set aside from sales
  work, reason ``moved to the generic newsletter list``; its consent is left as it is, so it keeps
  receiving the newsletter), or nothing (``stale_action="none"``);
- an address of the party undeliverable by its own delivery ledger but not yet suppressed by a recorded
  decision: ``suppress_address`` (an ``AddressStatus`` decision, rule ``clean_up``);
- a party with an owner and expected fields empty: ``completion_task``, a ``documentation`` task for the
  owner naming the missing fields (of kind ``task_kind``), due ``completion_days`` after the run (one per
  party, so a run can be undone party by party). A party the same run sets aside gets none: a set-aside
  party misses nothing.

A party with an open opportunity is being worked: the clean-up leaves it alone entirely unless
``include_open_opportunities`` is set. A party merged away is never a candidate (its survivor is).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_CLEAN_UP",
    "NEWSLETTER_REASON",
    "STALE_REASON",
    "SUPPRESS_REASON",
    "TASK_REASON",
    "Candidate",
    "CleanUpAction",
    "CleanUpKind",
    "CleanUpPolicy",
    "StaleAction",
    "plan_clean_up",
]

#: The reason a party set aside as stale is recorded with.
STALE_REASON = "stale"
#: The reason a stale party moved to the generic newsletter list is recorded with.
NEWSLETTER_REASON = "moved to the generic newsletter list"
#: The reason an address suppressed by a clean-up is recorded with.
SUPPRESS_REASON = "undeliverable"
#: The reason a completion task is opened with.
TASK_REASON = "incomplete record"


class StaleAction(StrEnum):
    """What the clean-up does with a stale party."""

    SET_ASIDE = "set_aside"
    NEWSLETTER = "newsletter"
    NONE = "none"


class CleanUpKind(StrEnum):
    """The kinds of action a clean-up takes."""

    SET_ASIDE = "set_aside"
    NEWSLETTER = "newsletter"
    SUPPRESS_ADDRESS = "suppress_address"
    COMPLETION_TASK = "completion_task"


class CleanUpPolicy(BaseModel):
    """What the quarterly clean-up does (see the module docstring); ``name`` and ``version`` are recorded
    with every run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)] = "clean_up"
    version: Annotated[int, Field(ge=1)] = 1
    stale_action: StaleAction = StaleAction.NEWSLETTER
    suppress_bounced: bool = True
    completion_tasks: bool = True
    completion_days: Annotated[int, Field(ge=1, le=366)] = 90
    task_kind: Annotated[str, Field(min_length=1, max_length=50)] = "documentation"
    include_open_opportunities: bool = False

    def recorded(self) -> dict[str, Any]:
        """The policy as a run records it: every setting, with its name and version."""
        return self.model_dump(mode="json")


#: The policy a CRM uses unless told otherwise.
DEFAULT_CLEAN_UP = CleanUpPolicy()


@dataclass(frozen=True)
class Candidate:
    """What the clean-up reads about one party (from the hygiene report, at the run's moment).

    ``undelivered``: the keys of the party's addresses undeliverable by its own ledger and not suppressed
    by a recorded decision; ``missing``: the expected fields that are empty.
    """

    party_id: str
    owner: str | None = None
    stale: bool = False
    set_aside: bool = False
    open_opportunities: int = 0
    undelivered: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class CleanUpAction:
    """One thing a clean-up does to one party: ``kind``, the reason recorded with it, and its detail (the
    address key suppressed, or the missing fields a completion task names)."""

    party_id: str
    kind: CleanUpKind
    reason: str
    detail: tuple[str, ...] = ()

    def to_json(self) -> list[Any]:
        """The action as a run's event stores it: ``[party_id, kind, reason, detail]``."""
        return [self.party_id, self.kind.value, self.reason, list(self.detail)]

    @classmethod
    def from_json(cls, data: list[Any]) -> CleanUpAction:
        """The action a run's event stored (:meth:`to_json`)."""
        party_id, kind, reason, detail = data
        return cls(party_id=str(party_id), kind=CleanUpKind(kind), reason=reason, detail=tuple(detail))


def plan_clean_up(candidates: Iterable[Candidate], policy: CleanUpPolicy = DEFAULT_CLEAN_UP,
                  ) -> list[CleanUpAction]:
    """Every action the policy takes on ``candidates``, in party id order (then kind, then detail)."""
    actions: list[CleanUpAction] = []
    for candidate in candidates:
        if candidate.open_opportunities and not policy.include_open_opportunities:
            continue
        aside = (candidate.stale and not candidate.set_aside
                 and policy.stale_action is not StaleAction.NONE)
        if aside:
            if policy.stale_action is StaleAction.SET_ASIDE:
                actions.append(CleanUpAction(candidate.party_id, CleanUpKind.SET_ASIDE, STALE_REASON))
            else:
                actions.append(CleanUpAction(candidate.party_id, CleanUpKind.NEWSLETTER, NEWSLETTER_REASON))
        if policy.suppress_bounced:
            actions.extend(
                CleanUpAction(candidate.party_id, CleanUpKind.SUPPRESS_ADDRESS, SUPPRESS_REASON, (key,))
                for key in sorted(set(candidate.undelivered)))
        if policy.completion_tasks and candidate.owner and candidate.missing and not aside:
            actions.append(CleanUpAction(candidate.party_id, CleanUpKind.COMPLETION_TASK, TASK_REASON,
                                         tuple(candidate.missing)))
    actions.sort(key=lambda a: (a.party_id, a.kind.value, a.detail))
    return actions
