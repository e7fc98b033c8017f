"""The segment state machine (parties change, deals open and close, merges and unmerges, segments defined,
changed and retired) on every store: members always equal the criteria evaluated directly, as of past
moments too, and the projection rebuilt from zero equals the one kept up to date."""

from __future__ import annotations

import pytest

from crmcore.testing.segments import segment_machine
from tests.conftest import POSTGRES_ENV_VAR, postgres_base_url
from tests.property.test_lifecycle_machine import budget, postgres_store, sqlite_store

TestSegmentsInMemory = segment_machine(lambda: "memory:", settings=budget(60), name="SegmentsInMemory")

TestSegmentsOnSQLite = segment_machine(sqlite_store, settings=budget(12), name="SegmentsOnSQLite")

TestSegmentsOnPostgreSQL = pytest.mark.skipif(
    postgres_base_url() is None, reason=f"PostgreSQL not configured: set {POSTGRES_ENV_VAR}",
)(segment_machine(postgres_store, settings=budget(6), name="SegmentsOnPostgreSQL"))
