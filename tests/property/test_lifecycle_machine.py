"""The party lifecycle state machine, run on every store: memory, SQLite and PostgreSQL.

Each example gets a fresh store (a new SQLite file, a new PostgreSQL schema dropped afterwards). On CI
(``CI`` set) the runs are derandomized so that a red build is reproducible; locally Hypothesis explores
with its example database in ``.hypothesis/``. ``CRMCORE_MACHINE_EXAMPLES`` scales every store's budget
(e.g. ``10`` for a long hunt).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, settings

from crmcore.testing import lifecycle_machine
from tests.conftest import POSTGRES_ENV_VAR, drop_schema, make_store_url, postgres_base_url

settings.register_profile(
    "crmcore-ci", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "crmcore-dev", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow],
)
BASE = settings.get_profile("crmcore-ci" if os.environ.get("CI") else "crmcore-dev")
SCALE = float(os.environ.get("CRMCORE_MACHINE_EXAMPLES", "1"))


def budget(max_examples: int) -> settings:
    """The machine's settings for a store: ``max_examples`` runs of up to 30 steps."""
    return settings(BASE, max_examples=max(1, int(max_examples * SCALE)), stateful_step_count=30)


@contextmanager
def sqlite_store() -> Iterator[str]:
    """A new SQLite file, deleted with its directory afterwards."""
    with tempfile.TemporaryDirectory(prefix="crmcore-machine-") as tmp:
        url, _ = make_store_url("sqlite", tmp)
        yield url


@contextmanager
def postgres_store() -> Iterator[str]:
    """A new PostgreSQL schema, dropped afterwards."""
    url, schema = make_store_url("postgresql", "")
    try:
        yield url
    finally:
        if schema is not None:
            drop_schema(schema)


TestPartyLifecycleInMemory = lifecycle_machine(
    lambda: "memory:", settings=budget(100), name="PartyLifecycleInMemory",
)

TestPartyLifecycleOnSQLite = lifecycle_machine(
    sqlite_store, settings=budget(30), name="PartyLifecycleOnSQLite",
)

TestPartyLifecycleOnPostgreSQL = pytest.mark.skipif(
    postgres_base_url() is None, reason=f"PostgreSQL not configured: set {POSTGRES_ENV_VAR}",
)(lifecycle_machine(postgres_store, settings=budget(15), name="PartyLifecycleOnPostgreSQL"))
