"""Store URLs: one string picks and configures the store."""

from __future__ import annotations

import pytest

from crmcore import StoreConfigurationError, StoreKind, parse_store_url


def test_memory_url_picks_the_in_memory_store() -> None:
    assert parse_store_url("memory:").kind is StoreKind.MEMORY


def test_sqlite_urls_take_relative_and_absolute_paths() -> None:
    assert parse_store_url("sqlite:///crm.db").sqlite_path == "crm.db"
    assert parse_store_url("sqlite:////var/lib/crm.db").sqlite_path == "/var/lib/crm.db"


def test_postgresql_url_gives_host_port_user_password_database_and_schema() -> None:
    settings = parse_store_url("postgresql://ann:s%40cret@db.local:6543/crm?schema=sales")
    assert settings.kind is StoreKind.POSTGRESQL
    assert (settings.pg_host, settings.pg_port, settings.pg_user, settings.pg_dbname, settings.pg_schema) == (
        "db.local", 6543, "ann", "crm", "sales")
    assert settings.pg_password is not None
    assert settings.pg_password.get_secret_value() == "s@cret"
    env = settings.eventsourcing_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert env["POSTGRES_SCHEMA"] == "sales"


def test_a_postgresql_store_inserts_with_crmcore_s_unpipelined_recorder() -> None:
    env = parse_store_url("postgresql://ann@db.local/crm").eventsourcing_env()
    assert env["APPLICATION_RECORDER_TOPIC"] == "crmcore._postgres:UnpipelinedPostgresApplicationRecorder"
    assert "POSTGRES_ENABLE_DB_FUNCTIONS" not in env  # that path inserts without the table lock


def test_the_environment_variable_is_used_when_no_url_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMCORE_STORE", "memory:")
    assert parse_store_url().kind is StoreKind.MEMORY


def test_the_default_store_is_an_sqlite_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMCORE_STORE", raising=False)
    assert parse_store_url().kind is StoreKind.SQLITE


@pytest.mark.parametrize(
    "url", ["", "mysql://x/y", "sqlite:///", "sqlite:///:memory:", "postgresql://host/",
            "postgresql://h/db?bogus=1", "postgresql://h/db?schema=bad-name", "postgresql://h:notaport/db"],
)
def test_unusable_urls_are_refused_with_a_typed_error(url: str) -> None:
    with pytest.raises(StoreConfigurationError):
        parse_store_url(url)


def test_cipher_and_compression_settings_reach_the_event_store() -> None:
    env = parse_store_url("memory:", cipher_key="a2V5a2V5a2V5a2V5a2V5aw==", compress=True).eventsourcing_env()
    assert env["CIPHER_TOPIC"] == "eventsourcing.cryptography:AESCipher"
    assert env["COMPRESSOR_TOPIC"].endswith("ZlibCompressor")
