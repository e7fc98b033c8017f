"""The opportunity state machine (open / move / re-estimate / move date / owner / override / win / lose /
reopen) on every store."""

from __future__ import annotations

import pytest

from crmcore.testing import opportunity_machine
from tests.conftest import POSTGRES_ENV_VAR, postgres_base_url
from tests.property.test_lifecycle_machine import budget, postgres_store, sqlite_store

TestOpportunitiesInMemory = opportunity_machine(
    lambda: "memory:", settings=budget(100), name="OpportunitiesInMemory",
)

TestOpportunitiesOnSQLite = opportunity_machine(
    sqlite_store, settings=budget(15), name="OpportunitiesOnSQLite",
)

TestOpportunitiesOnPostgreSQL = pytest.mark.skipif(
    postgres_base_url() is None, reason=f"PostgreSQL not configured: set {POSTGRES_ENV_VAR}",
)(opportunity_machine(postgres_store, settings=budget(8), name="OpportunitiesOnPostgreSQL"))
