"""Opening the database: the engine, SQLite's pragmas, the schema check and the migrations.

A database that cannot be reached becomes :class:`StoreUnavailableError`; one whose schema is
older than this microfab is upgraded (or refused with ``upgrade=False``), one newer is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from microfab.errors import StoreError, StoreSchemaError, StoreUnavailableError
from microfab.store.url import engine_url, mask_url, resolve_url

MIGRATIONS = Path(__file__).with_name("migrations")


def unavailable(url: str, exc: Exception) -> StoreUnavailableError:
    """The error for a database that cannot be reached (or was lost), with the driver's reason."""
    reason = (
        str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    )
    return StoreUnavailableError(f"cannot open the database at {mask_url(url)}: {reason}")


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Every SQLite connection: WAL (readers run alongside the writer), waits for a lock."""
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def connect(url: str, *, upgrade: bool = True) -> Engine:
    """The engine of the database at ``url`` (as :func:`resolve_url` gives it), its schema checked and by default
    created or upgraded; :class:`StoreUnavailableError` when it cannot be reached."""
    target = engine_url(url)
    if target.get_backend_name() == "sqlite" and target.database not in (None, "", ":memory:"):
        parent = Path(str(target.database)).expanduser().resolve().parent
        if not parent.is_dir():
            raise StoreUnavailableError(
                f"cannot open the database at {mask_url(url)}: folder {parent} does not exist"
            )
    engine = create_engine(target, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    try:
        with engine.begin() as conn:
            _check_schema(conn, upgrade=upgrade)
    except (OperationalError, DBAPIError) as exc:
        engine.dispose()
        raise unavailable(url, exc) from None
    except StoreError:
        engine.dispose()
        raise
    return engine


def alembic_config(conn: Connection) -> Config:
    """Alembic's configuration for migrating over ``conn``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _check_schema(conn: Connection, *, upgrade: bool) -> None:
    cfg = alembic_config(conn)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return
    known = {rev.revision for rev in ScriptDirectory.from_config(cfg).walk_revisions()}
    if current is not None and current not in known:
        raise StoreSchemaError(
            f"the database schema is at revision {current}, newer than this microfab knows "
            f"({head}); upgrade microfab"
        )
    if not upgrade:
        raise StoreSchemaError(
            f"the database schema is at revision {current or 'none'}, expected {head}; "
            "run 'microfab db upgrade'"
        )
    command.upgrade(cfg, "head")


def upgrade_store(url: str | None = None) -> tuple[str | None, str | None]:
    """Run the Alembic migrations up to head; returns (revision before, revision after)."""
    url = resolve_url(url)
    engine = create_engine(engine_url(url))
    try:
        with engine.begin() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
            command.upgrade(alembic_config(conn), "head")
            after = MigrationContext.configure(conn).get_current_revision()
    except (OperationalError, DBAPIError) as exc:
        raise unavailable(url, exc) from None
    finally:
        engine.dispose()
    return before, after
