"""Shared fixtures: every test that takes ``crm`` or ``store_url`` runs on memory, SQLite and PostgreSQL.

PostgreSQL tests need ``CRMCORE_TEST_POSTGRES_URL`` (``postgresql://user@host:port/db``, no query);
``scripts/run_tests.py`` sets it, starting a throwaway server when none is given. Each test gets its own
schema, dropped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest

from crmcore import CRM, StoreSettings, parse_store_url

POSTGRES_ENV_VAR = "CRMCORE_TEST_POSTGRES_URL"
STORES = ("memory", "sqlite", "postgresql")


def postgres_base_url() -> str | None:
    """The PostgreSQL server tests may use, if any."""
    return os.environ.get(POSTGRES_ENV_VAR) or None


def make_store_url(kind: str, tmp_dir: str) -> tuple[str, str | None]:
    """A fresh store URL of ``kind`` (and the PostgreSQL schema to drop afterwards)."""
    if kind == "memory":
        return "memory:", None
    if kind == "sqlite":
        return f"sqlite:///{tmp_dir}/crm-{uuid4().hex[:8]}.db", None
    base = postgres_base_url()
    if base is None:
        pytest.skip(f"PostgreSQL not configured: set {POSTGRES_ENV_VAR} or run scripts/run_tests.py")
    schema = f"t_{uuid4().hex[:16]}"
    return f"{base}?schema={schema}", schema


def drop_schema(schema: str) -> None:
    """Drop a test schema and everything in it."""
    import psycopg

    base = postgres_base_url()
    assert base is not None
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    """The kind of store this test runs on."""
    return str(request.param)


@pytest.fixture
def store_url(store_kind: str, tmp_path: os.PathLike[str]) -> Iterator[str]:
    """A fresh, empty store of each kind."""
    url, schema = make_store_url(store_kind, os.fspath(tmp_path))
    try:
        yield url
    finally:
        if schema is not None:
            drop_schema(schema)


@pytest.fixture
def crm(store_url: str) -> Iterator[CRM]:
    """A CRM over a fresh store of each kind."""
    with CRM(store_url) as app:
        yield app


@pytest.fixture
def settings_crm(
    request: pytest.FixtureRequest, store_kind: str, tmp_path: os.PathLike[str]
) -> Iterator[CRM]:
    """A CRM over a fresh store of each kind with the settings named by the test's parameter."""
    from crmcore import create_cipher_key

    url, schema = make_store_url(store_kind, os.fspath(tmp_path))
    choices: dict[str, dict[str, Any]] = {
        "plain": {},
        "compressed": {"compress": True},
        "encrypted": {"cipher_key": create_cipher_key(16)},
        "encrypted and compressed": {"cipher_key": create_cipher_key(16), "compress": True},
    }
    options = choices[request.param]
    settings: StoreSettings = parse_store_url(url, **options)
    try:
        with CRM(settings) as crm:
            yield crm
    finally:
        if schema is not None:
            drop_schema(schema)
