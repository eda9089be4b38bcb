"""Backup and restore round trips (SQLite, PostgreSQL and across), damaged backups, refusing a
non-empty target, and telemetry retention with hourly aggregates."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from conftest import DATA, pg_create_database, pg_drop_database
from microfab.cli import app
from microfab.errors import InputError
from microfab.model.events import event_from_dict
from microfab.model.identity import Role
from microfab.store import EventStore, open_store
from microfab.store import schema as tables
from microfab.store.audit import audit_records, record_change, verify_audit
from microfab.store.backup import BackupFileError, read_manifest, restore_backup, write_backup
from microfab.store.identity import add_user, create_token, verify_password, verify_token
from microfab.store.retention import apply_telemetry_retention, telemetry_hours

runner = CliRunner()
PASSWORD = "correct horse battery"
CONTENT_TABLES = [t for t in tables.metadata.sorted_tables]


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return (value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value).astimezone(dt.UTC)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def content(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every microfab table, in primary-key order, with times as aware UTC."""
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            return {
                table.name: [
                    tuple(_plain(v) for v in row)
                    for row in conn.execute(  # a table without a primary key: by every column
                        select(table).order_by(*(table.primary_key.columns or table.columns))
                    )
                ]
                for table in CONTENT_TABLES
            }
    finally:
        store.close()


@pytest.fixture
def other_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the same back end as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/restored.db"
        return
    url = pg_create_database()
    try:
        yield url
    finally:
        pg_drop_database(url)


def populate(url: str) -> str:
    """A store with a factory, a simulated hour of every stream, users, a token and audit
    records; returns the token's secret."""
    invoke("factory", "apply", str(DATA / "factory-small.yaml"), "--db", url)
    invoke("sim", "--scenario", "food-line", "--duration", "1h", "--speed", "max", "--db", url)
    with open_store(url) as store:
        add_user(store, "may.chan", Role.ADMIN, PASSWORD, actor="cli:test")
        _, secret = create_token(store, "line1-scanner", role=Role.ENGINEER, actor="cli:test")
        record_change(
            store,
            actor="user:may.chan",
            action="orders.release",
            target="order:WO-1",
            before={"status": "created"},
            after={"status": "released", "note": "急單 rush"},
        )
        assert verify_password(store, "may.chan", PASSWORD).ok  # a login attempt row too
    return secret


def check_restored(url: str, secret: str) -> None:
    with open_store(url) as store:
        assert verify_audit(store).ok
        assert verify_password(store, "may.chan", PASSWORD).ok
        assert verify_token(store, secret) is not None
        assert store.factory() is not None


def test_round_trip_on_each_back_end(db_url: str, other_url: str, tmp_path: Path) -> None:
    secret = populate(db_url)
    before = content(db_url)
    assert len(before["events"]) > 100 and len(before["audit_log"]) == 4
    backup_file = tmp_path / "microfab-backup.zip"
    out = invoke("backup", "--db", db_url, "--output", str(backup_file))
    assert f"→ {backup_file}" in out and "events:" in out
    manifest = read_manifest(backup_file)
    assert manifest.schema_revision is not None
    assert {t.name: t.rows for t in manifest.tables}["events"] == len(before["events"])
    invoke("restore", str(backup_file), "--db", other_url)
    assert content(other_url) == before
    check_restored(other_url, secret)
    # appends after a restore continue the sequences (PostgreSQL's serials were reset)
    with open_store(other_url) as store:
        record_change(store, actor="cli:test", action="users.add", target="user:x")
        assert verify_audit(store).ok
        more = event_from_dict(
            {
                "id": "after-restore-1",
                "ts": "2026-11-23T09:00:00Z",
                "machine": "kt/plant/line1/machining/cnc-1",
                "stream": "state",
                "state": "running",
            }
        )
        assert store.append([more]).inserted == 1
        assert store.last_seq() == max(r[0] for r in before["events"]) + 1


def test_round_trip_sqlite_to_postgresql_and_back(tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path}/source.db"
    secret = populate(sqlite_url)
    before = content(sqlite_url)
    first = tmp_path / "from-sqlite.zip"
    write_backup(sqlite_url, first)
    pg_url = pg_create_database()
    try:
        restore_backup(first, pg_url)
        assert content(pg_url) == before
        second = tmp_path / "from-postgresql.zip"
        write_backup(pg_url, second)
        check_restored(pg_url, secret)
        back = f"sqlite:///{tmp_path}/back.db"
        restore_backup(second, back)
        assert content(back) == before
    finally:
        pg_drop_database(pg_url)


def test_restore_refuses_a_database_with_rows_unless_forced(
    db_url: str, other_url: str, tmp_path: Path
) -> None:
    secret = populate(db_url)
    backup_file = tmp_path / "b.zip"
    write_backup(db_url, backup_file)
    with open_store(other_url) as store:
        add_user(store, "someone", Role.VIEWER, PASSWORD, actor="cli:test")
        with store.engine.begin() as conn:  # another application's table in the same database
            conn.execute(text("CREATE TABLE other_app (note VARCHAR(20))"))
            conn.execute(text("INSERT INTO other_app VALUES ('keep me')"))
    result = runner.invoke(app, ["restore", str(backup_file), "--db", other_url])
    assert isinstance(result.exception, InputError)
    assert "is not empty (2 rows)" in str(result.exception)
    assert "--force" in str(result.exception)
    invoke("restore", str(backup_file), "--db", other_url, "--force")
    assert content(other_url) == content(db_url)
    check_restored(other_url, secret)
    with open_store(other_url) as store:
        assert [r.target for r in audit_records(store)][-1] == "order:WO-1"
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT note FROM other_app")).scalar_one() == "keep me"


def test_an_empty_migrated_database_counts_as_empty(
    db_url: str, other_url: str, tmp_path: Path
) -> None:
    populate(db_url)
    backup_file = tmp_path / "b.zip"
    write_backup(db_url, backup_file)
    open_store(other_url).close()  # schema at head, no rows
    restore_backup(backup_file, other_url)
    assert content(other_url) == content(db_url)


def test_a_damaged_backup_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path}/a.db"
    populate(source)
    good = tmp_path / "good.zip"
    write_backup(source, good)
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "tables/users.jsonl":
                data = data.replace(b'"admin"', b'"viewer"')
            dst.writestr(item, data)
    target = tmp_path / "target.db"
    with pytest.raises(BackupFileError, match="table users does not match its checksum"):
        restore_backup(bad, f"sqlite:///{target}")
    assert not target.exists()
    not_zip = tmp_path / "notes.txt"
    not_zip.write_text("hello", encoding="utf-8")
    with pytest.raises(BackupFileError, match="not a microfab backup"):
        read_manifest(not_zip)
    with pytest.raises(InputError, match="no backup file"):
        read_manifest(tmp_path / "missing.zip")


def test_backup_of_a_missing_sqlite_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no SQLite database at"):
        write_backup(f"sqlite:///{tmp_path}/none.db", tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


# ---------------------------------------------------------------------------- retention

CNC = "kt/plant/line1/machining/cnc-1"
NOW = dt.datetime(2026, 12, 31, 0, 0, tzinfo=dt.UTC)


def telemetry(id: str, ts: str, **metrics: float) -> Any:
    return event_from_dict(
        {"id": id, "ts": ts, "machine": CNC, "stream": "telemetry", "metrics": metrics}
    )


def test_retention_keeps_hourly_aggregates(store: EventStore) -> None:
    old = [
        telemetry("t1", "2026-11-23T08:10:00Z", spindle_temp=40.0, load=0.5),
        telemetry("t2", "2026-11-23T08:40:00Z", spindle_temp=44.0),
        telemetry("t3", "2026-11-23T09:05:00Z", spindle_temp=50.0),
    ]
    recent = telemetry("t4", "2026-12-30T08:00:00Z", spindle_temp=41.0)
    stop = event_from_dict(
        {
            "id": "s1",
            "ts": "2026-11-23T08:20:00Z",
            "machine": CNC,
            "stream": "state",
            "state": "unplanned_stop",
            "reason": "breakdown",
        }
    )
    store.append([*old, recent, stop])
    dry = apply_telemetry_retention(store, keep_days=7, now=NOW, dry_run=True)
    assert (dry.events, dry.hours, dry.dry_run) == (3, 3, True)
    assert store.count() == 5
    done = apply_telemetry_retention(store, keep_days=7, now=NOW)
    assert (done.events, done.hours) == (3, 3)
    assert sorted(e.event.id for e in store.events()) == ["s1", "t4"]
    hours = {(h.metric, h.hour.hour): h for h in telemetry_hours(store)}
    assert set(hours) == {("spindle_temp", 8), ("spindle_temp", 9), ("load", 8)}
    temp8 = hours[("spindle_temp", 8)]
    assert (temp8.samples, temp8.total, temp8.minimum, temp8.maximum) == (2, 84.0, 40.0, 44.0)
    assert temp8.mean == 42.0
    # a later run merges into the same hour instead of replacing it
    store.append([telemetry("t5", "2026-11-23T08:55:00Z", spindle_temp=36.0)])
    apply_telemetry_retention(store, keep_days=7, now=NOW)
    temp8 = {(h.metric, h.hour.hour): h for h in telemetry_hours(store)}[("spindle_temp", 8)]
    assert (temp8.samples, temp8.total, temp8.minimum, temp8.maximum) == (3, 120.0, 36.0, 44.0)
    assert apply_telemetry_retention(store, keep_days=7, now=NOW).events == 0


def test_retention_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    with open_store(url) as store:
        store.append([telemetry("t1", "2020-01-01T00:00:00Z", load=1.0)])
    assert "dry run: 1 telemetry events" in invoke(
        "retention", "apply", "--telemetry-days", "30", "--dry-run", "--db", url
    )
    assert "deleted 1 telemetry events" in invoke(
        "retention", "apply", "--telemetry-days", "30", "--db", url
    )
    result = runner.invoke(app, ["retention", "apply", "--telemetry-days", "0", "--db", url])
    assert isinstance(result.exception, InputError)
