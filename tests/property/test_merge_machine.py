"""The merge state machine (register / update / link / merge / unmerge) on every store."""

from __future__ import annotations

import pytest

from crmcore.testing import merge_machine
from tests.conftest import POSTGRES_ENV_VAR, postgres_base_url
from tests.property.test_lifecycle_machine import budget, postgres_store, sqlite_store

TestPartyMergesInMemory = merge_machine(lambda: "memory:", settings=budget(25), name="PartyMergesInMemory")

TestPartyMergesOnSQLite = merge_machine(sqlite_store, settings=budget(8), name="PartyMergesOnSQLite")

TestPartyMergesOnPostgreSQL = pytest.mark.skipif(
    postgres_base_url() is None, reason=f"PostgreSQL not configured: set {POSTGRES_ENV_VAR}",
)(merge_machine(postgres_store, settings=budget(4), name="PartyMergesOnPostgreSQL"))
