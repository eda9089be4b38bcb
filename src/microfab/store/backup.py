"""Backups in a format of our own that restores on either back end (SQLite ⇄ PostgreSQL).

A backup is one zip file::

    manifest.json        format, format_version, created_at, source (password masked), dialect,
                         schema_revision, and per table: rows, columns, sha256 of its file
    tables/NAME.jsonl    one JSON object per row, in primary-key order; times as UTC ISO-8601

It is taken from one consistent snapshot: on SQLite through the online backup API (a copy taken
while writers go on), on PostgreSQL inside one REPEATABLE READ transaction. A restore checks every
table's checksum and row count before it writes anything, refuses a database that holds any row
unless ``force`` (which drops and recreates microfab's tables; other applications' tables in
the same database are left alone), migrates the empty target to the
backup's schema revision, loads the rows, resets PostgreSQL's sequences and then migrates to this
version's head — so an older backup restores into a newer microfab.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    DateTime,
    Engine,
    MetaData,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from microfab.errors import InputError, StoreError, StoreSchemaError
from microfab.store import schema
from microfab.store.database import alembic_config, sqlite_pragmas, unavailable
from microfab.store.schema import as_utc
from microfab.store.url import engine_url, mask_url, resolve_url

FORMAT = "microfab-backup"
FORMAT_VERSION = 1
_BATCH = 1000
_SKIPPED = {"alembic_version"}
"""Tables not copied: the schema revision is in the manifest instead."""
_PG_FUNCTIONS = ("microfab_audit_append_only()",)
"""Functions our migrations create on PostgreSQL (dropped with the tables by a forced restore)."""


class BackupFileError(InputError):
    """A backup file that is not one, or whose content does not match its manifest."""

    key = "invalid_backup"


@dataclass(frozen=True, slots=True)
class TableCopy:
    """One table in a backup: its columns, how many rows and the checksum of its file."""

    name: str
    columns: list[str]
    rows: int
    sha256: str


@dataclass(frozen=True, slots=True)
class BackupManifest:
    """What a backup holds; written as manifest.json."""

    created_at: str
    source: str
    dialect: str
    schema_revision: str | None
    tables: list[TableCopy]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at,
            "source": self.source,
            "dialect": self.dialect,
            "schema_revision": self.schema_revision,
            "tables": {
                t.name: {"columns": t.columns, "rows": t.rows, "sha256": t.sha256}
                for t in self.tables
            },
        }

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def _engine(url: str) -> Engine:
    engine = create_engine(engine_url(url), pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    return engine


def _json_value(value: Any, is_time: bool) -> Any:
    if value is None:
        return None
    if is_time and isinstance(value, dt.datetime):
        # ISO 8601 to the microsecond, not format_ts's milliseconds: a restore gives back the
        # very times (audit hashes cover them)
        return as_utc(value).isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        raise StoreError("a binary column cannot be backed up in this format")
    return value


def _row_value(value: Any, is_time: bool) -> Any:
    if value is None or not is_time:
        return value
    return dt.datetime.fromisoformat(value)


def _tables(conn: Connection) -> list[Table]:
    """microfab's tables in the database, as they are there (other applications' tables that
    share the database are neither copied, counted nor dropped)."""
    meta = MetaData()
    meta.reflect(conn, only=lambda name, _: name in schema.metadata.tables)
    return [t for t in meta.sorted_tables if t.name not in _SKIPPED]


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _snapshot(url: str) -> Iterator[Connection]:
    """A connection that sees one consistent state of the database at ``url``."""
    target = engine_url(url)
    if target.get_backend_name() == "sqlite":
        database = str(target.database or "")
        if database in ("", ":memory:") or not Path(database).expanduser().is_file():
            raise InputError(f"no SQLite database at {mask_url(url)}; expected an existing file")
        with tempfile.TemporaryDirectory(prefix="microfab-backup-") as folder:
            copy = Path(folder) / "snapshot.db"
            source = sqlite3.connect(Path(database).expanduser())
            try:
                destination = sqlite3.connect(copy)
                try:
                    source.backup(destination)
                finally:
                    destination.close()
            except sqlite3.Error as exc:
                raise unavailable(url, exc) from None
            finally:
                source.close()
            engine = create_engine(f"sqlite:///{copy}")
            try:
                with engine.connect() as conn:
                    yield conn
            finally:
                engine.dispose()
        return
    engine = _engine(url)
    try:
        with engine.connect() as raw:
            conn = raw.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn
    finally:
        engine.dispose()


def write_backup(url: str | None, output: Path) -> BackupManifest:
    """Copy every table of the database at ``url`` into the zip file ``output``."""
    url = resolve_url(url)
    output = output.expanduser()
    if not output.parent.is_dir():
        raise InputError(f"folder {output.parent} does not exist; create it or choose another")
    partial = output.with_name(output.name + ".partial")
    try:
        with _snapshot(url) as conn:
            revision = _revision(conn)
            if revision is None:
                raise StoreSchemaError(
                    f"{mask_url(url)} holds no microfab schema; nothing to back up"
                )
            copies: list[TableCopy] = []
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for table in _tables(conn):
                    copies.append(_write_table(conn, table, archive))
                manifest = BackupManifest(
                    created_at=dt.datetime.now(dt.UTC).isoformat(),
                    source=mask_url(url),
                    dialect=conn.dialect.name,
                    schema_revision=revision,
                    tables=copies,
                )
                archive.writestr(
                    "manifest.json", json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False)
                )
    except (OperationalError, DBAPIError) as exc:
        partial.unlink(missing_ok=True)
        raise unavailable(url, exc) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(output)
    return manifest


def _write_table(conn: Connection, table: Table, archive: zipfile.ZipFile) -> TableCopy:
    columns = [c.name for c in table.columns]
    times = [isinstance(c.type, DateTime) for c in table.columns]
    order = list(table.primary_key.columns) or list(table.columns)
    digest = hashlib.sha256()
    rows = 0
    with archive.open(f"tables/{table.name}.jsonl", "w") as member:
        result = conn.execution_options(yield_per=_BATCH).execute(select(table).order_by(*order))
        for row in result:
            record = {
                name: _json_value(value, is_time)
                for name, value, is_time in zip(columns, row, times, strict=True)
            }
            line = (json.dumps(record, ensure_ascii=False, allow_nan=True) + "\n").encode()
            digest.update(line)
            member.write(line)
            rows += 1
    return TableCopy(table.name, columns, rows, digest.hexdigest())


def read_manifest(path: Path) -> BackupManifest:
    """The manifest of a backup file, after checking every table file against it."""
    try:
        with zipfile.ZipFile(path.expanduser()) as archive:
            manifest = _parse_manifest(path, archive)
            for table in manifest.tables:
                _check_table(path, archive, table)
    except FileNotFoundError:
        raise InputError(
            f"no backup file at {path}; expected a file made by 'microfab backup'"
        ) from None
    except zipfile.BadZipFile:
        raise BackupFileError(
            f"{path} is not a microfab backup (not a zip file); expected a file made by "
            "'microfab backup'"
        ) from None
    return manifest


def _parse_manifest(path: Path, archive: zipfile.ZipFile) -> BackupManifest:
    try:
        document = json.loads(archive.read("manifest.json"))
        if document.get("format") != FORMAT:
            raise ValueError("format")
        if document.get("format_version") != FORMAT_VERSION:
            raise BackupFileError(
                f"{path} is backup format version {document.get('format_version')}; this "
                f"microfab reads version {FORMAT_VERSION}"
            )
        tables = [
            TableCopy(name, list(info["columns"]), int(info["rows"]), str(info["sha256"]))
            for name, info in document["tables"].items()
        ]
        return BackupManifest(
            created_at=str(document["created_at"]),
            source=str(document["source"]),
            dialect=str(document["dialect"]),
            schema_revision=document["schema_revision"],
            tables=tables,
        )
    except (KeyError, ValueError, TypeError, AttributeError):
        raise BackupFileError(
            f"{path} has no valid manifest.json; expected a file made by 'microfab backup'"
        ) from None


def _check_table(path: Path, archive: zipfile.ZipFile, table: TableCopy) -> None:
    digest = hashlib.sha256()
    rows = 0
    try:
        with archive.open(f"tables/{table.name}.jsonl") as member:
            for line in member:
                digest.update(line)
                rows += 1
    except KeyError:
        raise BackupFileError(
            f"{path} lacks tables/{table.name}.jsonl named in its manifest"
        ) from None
    if digest.hexdigest() != table.sha256 or rows != table.rows:
        raise BackupFileError(
            f"{path}: table {table.name} does not match its checksum in the manifest "
            f"({rows} rows, {table.rows} expected); the file is damaged"
        )


def _row_count(conn: Connection, table: Table) -> int:
    return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def database_rows(conn: Connection) -> int:
    """How many rows the database holds, over every table but Alembic's."""
    return sum(_row_count(conn, t) for t in _tables(conn))


def _drop_everything(conn: Connection) -> None:
    """Drop microfab's tables (and Alembic's record of the schema) for a forced restore."""
    meta = MetaData()
    meta.reflect(conn, only=lambda name, _: name in schema.metadata.tables or name in _SKIPPED)
    meta.drop_all(conn)
    if conn.dialect.name == "postgresql":
        for function in _PG_FUNCTIONS:
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {function} CASCADE")


def restore_backup(path: Path, url: str | None, *, force: bool = False) -> BackupManifest:
    """Load a backup into the database at ``url``; see the module docstring."""
    url = resolve_url(url)
    manifest = read_manifest(path)
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(conn)
            scripts = ScriptDirectory.from_config(cfg)
            known = {rev.revision for rev in scripts.walk_revisions()}
            if manifest.schema_revision not in known:
                raise StoreSchemaError(
                    f"{path} is at schema revision {manifest.schema_revision}, which this "
                    f"microfab does not know (newest {scripts.get_current_head()}); upgrade "
                    "microfab"
                )
            current = _revision(conn)
            if current is not None and current not in known:
                raise StoreSchemaError(
                    f"{mask_url(url)} is at schema revision {current}, newer than this microfab"
                )
            held = database_rows(conn)
            if held and not force:
                raise InputError(
                    f"{mask_url(url)} is not empty ({held} rows); restore into an empty "
                    "database, or add --force to replace everything in it"
                )
            if force and held:
                _drop_everything(conn)
                current = None
            if current != manifest.schema_revision:
                if current is None or scripts.get_revision(current) is None:
                    command.upgrade(cfg, str(manifest.schema_revision))
                else:
                    _move_to(cfg, scripts, current, str(manifest.schema_revision))
            with zipfile.ZipFile(path.expanduser()) as archive:
                tables = {t.name: t for t in _tables(conn)}
                for copy in manifest.tables:
                    table = tables.get(copy.name)
                    if table is None:
                        raise BackupFileError(
                            f"{path}: table {copy.name} does not exist at schema revision "
                            f"{manifest.schema_revision}"
                        )
                    _load_table(conn, archive, table, copy)
            if conn.dialect.name == "postgresql":
                _reset_sequences(conn, list(tables.values()))
            command.upgrade(cfg, "head")
    except (OperationalError, DBAPIError) as exc:
        raise unavailable(url, exc) from None
    finally:
        engine.dispose()
    return manifest


def _move_to(cfg: Any, scripts: ScriptDirectory, current: str, wanted: str) -> None:
    """Migrate an empty database from ``current`` to ``wanted``, down or up."""
    ancestors = {rev.revision for rev in scripts.iterate_revisions(current, "base")}
    if wanted in ancestors:
        command.downgrade(cfg, wanted)
    else:
        command.upgrade(cfg, wanted)


def _load_table(conn: Connection, archive: zipfile.ZipFile, table: Table, copy: TableCopy) -> None:
    times = {c.name for c in table.columns if isinstance(c.type, DateTime)}
    unknown = [c for c in copy.columns if c not in table.columns]
    if unknown:
        raise BackupFileError(
            f"backup table {copy.name} has columns {', '.join(unknown)} that the database lacks"
        )
    batch: list[dict[str, Any]] = []
    with archive.open(f"tables/{copy.name}.jsonl") as member:
        for line in io.TextIOWrapper(member, encoding="utf-8"):
            record = json.loads(line)
            batch.append({k: _row_value(v, k in times) for k, v in record.items()})
            if len(batch) >= _BATCH:
                conn.execute(insert(table), batch)
                batch = []
    if batch:
        conn.execute(insert(table), batch)


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """Point every serial column's sequence past the rows just loaded (PostgreSQL)."""
    for table in tables:
        for column in table.columns:
            sequence = conn.scalar(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
            )
            if sequence is None:
                continue
            top = conn.scalar(select(func.max(column)))
            conn.execute(
                text("SELECT setval(CAST(:s AS regclass), :v, :called)"),
                {"s": sequence, "v": int(top) if top is not None else 1, "called": top is not None},
            )
