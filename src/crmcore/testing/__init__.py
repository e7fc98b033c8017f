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
- :mod:`crmcore.testing.tasks`: :class:`TaskMachine`, a state machine over every task command checking the
  agendas and the interactions recorded on parties after every step; :func:`task_machine`.

- :mod:`crmcore.testing.sales`: a seeded simulated sales history (``simulate_sales``) to play through a
  CRM or load in bulk, for demonstrations, benchmarks and backtests; :mod:`crmcore.testing.scoring`
  registers its deals' parties with traits that predict how the deals end (``sales_parties``).
- :mod:`crmcore.testing.campaigns`: running campaigns built on the aggregate (``running_campaign``) and
  seeded engagement reports about their recipients (``simulate_engagement``), saved in batches.
- :mod:`crmcore.testing.history`: a seeded two-year history of a whole CRM (``simulate_history``: parties
  through the lifecycle, owners, opportunities, consent, a quarterly newsletter and its engagement, custom
  fields, duplicates) with a summary to assert against, loaded in batches (``load_history``).

The machines and strategies need ``hypothesis`` (``pip install 'crmcore[testing]'``); they are imported on
first use, so :mod:`crmcore.testing.sales` and :mod:`crmcore.testing.synthetic` work without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from crmcore.testing.tasks import TaskMachine, TaskModel, TaskRecord, task_machine

#: Where each name lives: imported on first use, so modules without Hypothesis load without it.
_HOMES = {
    "strategies": "crmcore.testing",
    **dict.fromkeys(["Expectation", "ExpectedCounts", "LifecycleModel", "PartyLifecycleMachine",
                     "PartyRecord", "StoreUrlFactory", "events_from_changes", "lifecycle_machine",
                     "same_value"],
                    "crmcore.testing.lifecycle"),
    **dict.fromkeys(["MergeModel", "PartyMergeMachine", "merge_machine"], "crmcore.testing.merging"),
    **dict.fromkeys(["OpportunityMachine", "OpportunityModel", "OpportunityRecord", "opportunity_machine"],
                    "crmcore.testing.opportunities"),
    **dict.fromkeys(["TaskMachine", "TaskModel", "TaskRecord", "task_machine"], "crmcore.testing.tasks"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'crmcore.testing' has no attribute {name!r}")
    if name == "strategies":
        return importlib.import_module("crmcore.testing.strategies")
    return getattr(importlib.import_module(home), name)


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
    "TaskMachine",
    "TaskModel",
    "TaskRecord",
    "events_from_changes",
    "lifecycle_machine",
    "merge_machine",
    "opportunity_machine",
    "same_value",
    "strategies",
    "task_machine",
]
