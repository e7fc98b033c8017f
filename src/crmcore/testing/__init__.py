"""Reusable Hypothesis tools for testing crmcore and the applications built on it.

- :mod:`crmcore.testing.strategies`: valid (and deliberately invalid) command inputs, and ``Party`` event
  histories for testing views with no database.
- :mod:`crmcore.testing.lifecycle`: :class:`PartyLifecycleMachine`, a model-based state machine that
  drives a real :class:`crmcore.CRM` over any store and checks it against a plain-data model after every
  step; :func:`lifecycle_machine` turns it into a ``TestCase`` for the store of your choice::

      from crmcore.testing import lifecycle_machine

      TestPartyLifecycle = lifecycle_machine(lambda: "memory:")

- :mod:`crmcore.testing.merging`: :class:`PartyMergeMachine`, a state machine over register, update,
  link, merge and unmerge checking that nothing recorded is lost or misplaced; :func:`merge_machine`.
- :mod:`crmcore.testing.opportunities`: :class:`OpportunityMachine`, a state machine over every opportunity
  command checking the pipeline rules after every step; :func:`opportunity_machine`.

Needs ``hypothesis``: ``pip install 'crmcore[testing]'``.
"""

from __future__ import annotations

from crmcore.testing import strategies
from crmcore.testing.lifecycle import (
    Expectation,
    ExpectedCounts,
    LifecycleModel,
    PartyLifecycleMachine,
    PartyRecord,
    StoreUrlFactory,
    events_from_changes,
    lifecycle_machine,
    same_value,
)
from crmcore.testing.merging import MergeModel, PartyMergeMachine, merge_machine
from crmcore.testing.opportunities import (
    OpportunityMachine,
    OpportunityModel,
    OpportunityRecord,
    opportunity_machine,
)

__all__ = [
    "Expectation",
    "ExpectedCounts",
    "LifecycleModel",
    "MergeModel",
    "OpportunityMachine",
    "OpportunityModel",
    "OpportunityRecord",
    "PartyLifecycleMachine",
    "PartyMergeMachine",
    "PartyRecord",
    "StoreUrlFactory",
    "events_from_changes",
    "lifecycle_machine",
    "merge_machine",
    "opportunity_machine",
    "same_value",
    "strategies",
]
