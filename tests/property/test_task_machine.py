"""The task state machine (plan / assign / reassign / reschedule / complete / cancel, good and bad, with
merges of the tasks' parties) on every store."""

from __future__ import annotations

import pytest

from crmcore.testing import task_machine
from tests.conftest import POSTGRES_ENV_VAR, postgres_base_url
from tests.property.test_lifecycle_machine import budget, postgres_store, sqlite_store

TestTasksInMemory = task_machine(lambda: "memory:", settings=budget(100), name="TasksInMemory")

TestTasksOnSQLite = task_machine(sqlite_store, settings=budget(15), name="TasksOnSQLite")

TestTasksOnPostgreSQL = pytest.mark.skipif(
    postgres_base_url() is None, reason=f"PostgreSQL not configured: set {POSTGRES_ENV_VAR}",
)(task_machine(postgres_store, settings=budget(8), name="TasksOnPostgreSQL"))
