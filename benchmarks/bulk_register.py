"""Bulk registration throughput on SQLite, next to two plain baselines measured in the same run.

    python benchmarks/bulk_register.py [--parties 100000] [--batch 1000] [--dir DIR] [--repeat 5]

1. crmcore: ``CRM("sqlite:///…").bulk_register(rows)`` on a fresh file (validation included).
2. Raw ``sqlite3``: the very events crmcore stored (read back from its file: originator id, version,
   topic, state bytes) inserted into a fresh file with the same table layout and the same journal and
   synchronous settings, ``executemany`` in transactions of ``--batch`` rows.
3. SQLAlchemy 2.0 ORM: a plain ``contacts`` model with the same fields, ``session.add_all`` and a commit
   per 1,000 rows, on a fresh file with the same journal and synchronous settings.

All three run in turn, each on fresh files, for ``--repeat`` rounds. Each round's ratios pair runs made
seconds apart, so a machine busy with other work affects both sides alike; the final
``ratio_vs_raw_sqlite`` and ``ratio_vs_sqlalchemy_orm`` are the medians of the rounds' ratios (crmcore
parties/s divided by the baseline's rows/s). Each contestant's best round is printed too.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, create_engine, event, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

#: The events table exactly as the store creates it (``SQLiteApplicationRecorder``).
EVENTS_TABLE = (
    "CREATE TABLE IF NOT EXISTS stored_events ("
    "originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
    "PRIMARY KEY (originator_id, originator_version))"
)

FIRST_NAMES = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Radia", "Tim",
               "Frances", "John", "Hedy", "Edsger", "Katherine", "Donald", "Sophie", "Niklaus"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie",
              "Perlman", "Berners-Lee", "Allen", "Backus", "Lamarr", "Dijkstra", "Johnson", "Knuth"]
COMPANY_WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne",
                 "Tyrell", "Cyberdyne", "Soylent", "Wonka", "Aperture", "Massive", "Dynamic"]
COMPANY_SUFFIXES = ["Ltd", "GmbH", "Inc.", "SA", "BV", "Corp", "Group", "Systems"]
CHANNELS = ["email", "web_form", "download", "phone", "meeting", "social", "event", "referral"]
INDUSTRIES = ["software", "retail", "finance", "health", "logistics", "energy", "education"]
INTERESTS = ["cloud", "security", "analytics", "mobile", "ai", "support", "training"]
REPS = [f"rep-{i:03d}" for i in range(40)]
ACTORS = ["import-job", "crm-sync", "marketing-upload"]


class Base(DeclarativeBase):
    """The baseline's plain ORM base."""


class Contact(Base):
    """The baseline: a plain ORM ``contacts`` table with the same fields a registered party has."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    organization_name: Mapped[str | None] = mapped_column(String(200))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(20))
    owner: Mapped[str | None] = mapped_column(String(200))
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def make_rows(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` realistic registration rows: persons and organizations, suspects and leads."""
    rnd = random.Random(seed)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for i in range(count):
        person = rnd.random() < 0.7
        row: dict[str, Any] = {
            "kind": "person" if person else "organization",
            "stage": "lead" if rnd.random() < 0.4 else "suspect",
            "actor": rnd.choice(ACTORS),
        }
        company = f"{rnd.choice(COMPANY_WORDS)} {rnd.choice(COMPANY_WORDS)} {rnd.choice(COMPANY_SUFFIXES)}"
        contact = f"{rnd.choice(FIRST_NAMES)} {rnd.choice(LAST_NAMES)}"
        if person:
            row["name"] = contact
            if rnd.random() < 0.5:
                row["organization_name"] = company
        else:
            row["name"] = company
            if rnd.random() < 0.4:
                row["contact_name"] = contact
        if row["stage"] == "lead" or rnd.random() < 0.2:
            row["channel"] = rnd.choice(CHANNELS)
        if rnd.random() < 0.6:
            row["owner"] = rnd.choice(REPS)
        if rnd.random() < 0.75:
            profile: dict[str, Any] = {"industry": rnd.choice(INDUSTRIES)}
            if rnd.random() < 0.5:
                profile["employees"] = rnd.randint(1, 50_000)
            if rnd.random() < 0.4:
                profile["interests"] = rnd.sample(INTERESTS, rnd.randint(1, 3))
            if rnd.random() < 0.3:
                profile["newsletter"] = rnd.random() < 0.5
            row["profile"] = profile
        if rnd.random() < 0.3:
            row["effective_at"] = base + timedelta(seconds=i * 37)
        rows.append(row)
    return rows


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def run_crmcore(path: Path, rows: list[dict[str, Any]], batch: int) -> tuple[float, list[Any]]:
    """Seconds taken by ``bulk_register`` on a fresh file, and the ids it returned."""
    from crmcore import CRM

    with CRM(f"sqlite:///{path}") as crm:
        gc.collect()
        started = time.perf_counter()
        ids = crm.bulk_register(rows, batch_size=batch)
        seconds = time.perf_counter() - started
    return seconds, ids


def verify_crmcore(path: Path, rows: list[dict[str, Any]], ids: list[Any]) -> int:
    """Count the stored events and check sample parties read back as given. Returns the count."""
    from crmcore import CRM

    with sqlite3.connect(path) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()
    if count != len(rows) or len(ids) != len(rows) or len(set(ids)) != len(rows):
        raise SystemExit(f"FAILED: expected {len(rows)} events and ids, found {count} events, {len(ids)} ids")
    with CRM(f"sqlite:///{path}") as crm:
        for index in sorted({0, len(rows) // 2, len(rows) - 1}):
            row, view = rows[index], crm.get_party(ids[index])
            expected = {
                "kind": row["kind"], "stage": row.get("stage", "suspect"), "name": row["name"],
                "organization_name": row.get("organization_name"), "contact_name": row.get("contact_name"),
                "channel": row.get("channel"), "owner": row.get("owner"), "profile": row.get("profile", {}),
                "version": 1,
            }
            actual = {k: getattr(view, k) for k in expected}
            actual = {k: (v.value if hasattr(v, "value") else v) for k, v in actual.items()}
            if actual != expected:
                raise SystemExit(f"FAILED: party {index} reads back as {actual}, expected {expected}")
            if "effective_at" in row and view.last_effective_at != row["effective_at"]:
                raise SystemExit(f"FAILED: party {index} effective time {view.last_effective_at}")
    return int(count)


def read_stored_events(path: Path) -> list[tuple[str, int, str, bytes]]:
    """The events exactly as crmcore stored them, in log order."""
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid"
        ).fetchall()


def store_pragmas(path: Path) -> dict[str, Any]:
    """The journal mode and synchronous level crmcore's own connections use on this file."""
    from crmcore import CRM

    with CRM(f"sqlite:///{path}") as crm:
        datastore = crm._app.factory.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=False) as c:
            c.execute("PRAGMA journal_mode")
            journal = c.fetchone()[0]
            c.execute("PRAGMA synchronous")
            synchronous = c.fetchone()[0]
    return {"journal_mode": journal, "synchronous": synchronous}


def _apply_pragmas(execute: Any, pragmas: dict[str, Any]) -> None:
    execute(f"PRAGMA journal_mode={pragmas['journal_mode']}")
    execute(f"PRAGMA synchronous={pragmas['synchronous']}")


def baseline_raw_sqlite(
    path: Path, events: list[tuple[str, int, str, bytes]], batch: int, pragmas: dict[str, Any]
) -> float:
    """Seconds for plain ``sqlite3`` to insert ``events`` in transactions of ``batch`` rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    _apply_pragmas(conn.execute, pragmas)
    conn.execute(EVENTS_TABLE)
    insert = "INSERT INTO stored_events VALUES (?,?,?,?)"
    gc.collect()
    started = time.perf_counter()
    for start in range(0, len(events), batch):
        conn.execute("BEGIN")
        conn.executemany(insert, events[start : start + batch])
        conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    (count,) = conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()
    conn.close()
    if count != len(events):
        raise SystemExit(f"FAILED: raw sqlite3 stored {count} of {len(events)} rows")
    return seconds


def baseline_sqlalchemy_orm(path: Path, rows: list[dict[str, Any]], pragmas: dict[str, Any]) -> float:
    """Seconds for a plain SQLAlchemy ORM model to store ``rows``: ``add_all`` + commit per 1,000."""
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _: Any) -> None:
        _apply_pragmas(dbapi_connection.execute, pragmas)

    Base.metadata.create_all(engine)
    gc.collect()
    started = time.perf_counter()
    with Session(engine) as session:
        for start in range(0, len(rows), 1000):
            now = datetime.now(UTC)
            session.add_all([
                Contact(
                    kind=r["kind"], stage=r.get("stage", "suspect"), name=r["name"],
                    organization_name=r.get("organization_name"), contact_name=r.get("contact_name"),
                    channel=r.get("channel"), owner=r.get("owner"), profile=r.get("profile", {}),
                    actor=r["actor"], created_at=r.get("effective_at", now),
                )
                for r in rows[start : start + 1000]
            ])
            session.commit()
    seconds = time.perf_counter() - started
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(Contact))
    engine.dispose()
    if count != len(rows):
        raise SystemExit(f"FAILED: SQLAlchemy stored {count} of {len(rows)} rows")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parties", type=int, default=100_000, help="rows to register (default 100000)")
    parser.add_argument("--batch", type=int, default=1000, help="rows per transaction (default 1000)")
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite files go (default: temp)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="rounds of all three on fresh files; each one's best counts (default 5)")
    args = parser.parse_args(argv)
    if args.parties < 1 or args.batch < 1 or args.repeat < 1:
        parser.error("--parties, --batch and --repeat must be positive")

    with tempfile.TemporaryDirectory(prefix="crmcore-bench-", dir=args.dir) as tmp:
        directory = Path(tmp)
        rows = make_rows(args.parties)
        print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, {os.cpu_count()} cpus")
        print(f"rows: {len(rows)}, batch: {args.batch}, rounds: {args.repeat}, files in {directory}")
        best = {"crmcore": 0.0, "raw": 0.0, "orm": 0.0}
        ratios: dict[str, list[float]] = {"raw": [], "orm": []}
        for round_no in range(1, args.repeat + 1):
            crm_path = directory / f"crmcore-{round_no}.db"
            crm_seconds, ids = run_crmcore(crm_path, rows, args.batch)
            crm_rate = _rate(len(rows), crm_seconds)
            stored = verify_crmcore(crm_path, rows, ids)
            pragmas = store_pragmas(crm_path)
            events = read_stored_events(crm_path)
            raw_seconds = baseline_raw_sqlite(directory / f"raw-{round_no}.db", events, args.batch, pragmas)
            raw_rate = _rate(len(events), raw_seconds)
            orm_seconds = baseline_sqlalchemy_orm(directory / f"orm-{round_no}.db", rows, pragmas)
            orm_rate = _rate(len(rows), orm_seconds)
            print(f"round {round_no}: crmcore bulk_register {crm_rate:,.0f} parties/s, "
                  f"raw sqlite3 executemany {raw_rate:,.0f} rows/s, "
                  f"sqlalchemy orm add_all {orm_rate:,.0f} rows/s "
                  f"(this round: {crm_rate / raw_rate:.2f} and {crm_rate / orm_rate:.2f})")
            print(f"  crmcore stored events: {stored} (verified: count, unique ids, sample parties read "
                  f"back); store pragmas, used for both baselines too: "
                  f"journal_mode={pragmas['journal_mode']}, synchronous={pragmas['synchronous']}")
            best = {"crmcore": max(best["crmcore"], crm_rate), "raw": max(best["raw"], raw_rate),
                    "orm": max(best["orm"], orm_rate)}
            ratios["raw"].append(crm_rate / raw_rate)
            ratios["orm"].append(crm_rate / orm_rate)
            for pattern in (f"*-{round_no}.db", f"*-{round_no}.db-*"):
                for path in directory.glob(pattern):
                    path.unlink()
        print(f"best rounds: crmcore {best['crmcore']:,.0f} parties/s, "
              f"raw sqlite3 {best['raw']:,.0f} rows/s, sqlalchemy orm {best['orm']:,.0f} rows/s "
              f"(best over best: "
              f"{best['crmcore'] / best['raw']:.2f} and {best['crmcore'] / best['orm']:.2f})")
        print("rounds' ratios: vs raw sqlite3 " + " ".join(f"{r:.2f}" for r in ratios["raw"])
              + "; vs sqlalchemy orm " + " ".join(f"{r:.2f}" for r in ratios["orm"]))
        print(f"ratio_vs_raw_sqlite: {statistics.median(ratios['raw']):.2f}")
        print(f"ratio_vs_sqlalchemy_orm: {statistics.median(ratios['orm']):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
