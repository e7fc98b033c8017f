"""The engagement policy: which parties stopped reading what they are sent.

A party is **inactive** at moment T when it has been mailed at or before T - ``inactive_after_days`` and
has no open or click in (T - ``inactive_after_days``, T]. "Mailed" is any evidence that a newsletter
reached the party: a delivery report, and also an open or a click (each proves a delivery), an unsubscribe
from a newsletter or a spam complaint. A party never mailed, or first mailed less than
``inactive_after_days`` before T, is not inactive: there is no evidence yet. The default, 365 days, is the
"no opening for 12 months" of DOMAIN.md.

:func:`is_inactive` is pure: it reads one ``party_engagement`` row (:mod:`crmcore.projections.campaigns`)
folded from the reports effective by T. Newsletter audiences exclude inactive parties unless the campaign
sets ``include_inactive``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from crmcore.projections.asof import utc_text

__all__ = ["DEFAULT_ENGAGEMENT", "EngagementPolicy", "is_inactive"]


class EngagementPolicy(BaseModel):
    """When a party counts as inactive: mailed ``inactive_after_days`` ago or more, with no open or click
    since. ``name`` and ``version`` are recorded with every decision taken under the policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)] = "engagement"
    version: Annotated[int, Field(ge=1)] = 1
    inactive_after_days: Annotated[int, Field(ge=1, le=36_500)] = 365

    @property
    def inactive_after(self) -> timedelta:
        """How long without an open or a click makes a mailed party inactive."""
        return timedelta(days=self.inactive_after_days)

    def recorded(self) -> dict[str, Any]:
        """The policy as decisions record it: its name and version."""
        return {"name": self.name, "version": self.version}


#: The policy a CRM uses unless configured otherwise.
DEFAULT_ENGAGEMENT = EngagementPolicy()


def is_inactive(row: Mapping[str, Any] | None, at: datetime, policy: EngagementPolicy = DEFAULT_ENGAGEMENT,
                ) -> bool:
    """Whether the party whose ``party_engagement`` row is ``row`` (None: no report at all) is inactive at
    ``at`` (aware) under ``policy``.

    The row must be folded from the reports effective by ``at``: an open or click after ``at`` in it is
    read as engagement (the party is not called inactive on a row that knows better).
    """
    if row is None or row.get("first_delivery") is None:
        return False
    cutoff = utc_text(at - policy.inactive_after)
    if row["first_delivery"] > cutoff:
        return False
    engaged = max(row.get("last_open") or "", row.get("last_click") or "")
    return engaged <= cutoff
