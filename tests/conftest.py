"""Shared fixtures: a database URL on each back end, and an opened event store on it."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from microfab.store import EventStore, open_store
from services import MosquittoServer, mosquitto_server

# Hypothesis keeps a cache of source constants; keep it out of the working tree.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "microfab-hypothesis")
)

DATA = Path(__file__).parent / "data"


def _shared_folder() -> Path:
    """The reference data (benchmark instances, emission factors, PACT schema, funding rules).

    ``$MICROFAB_SHARED`` when set; else ``../shared`` next to the checkout, as in the project's
    workspace; else this machine's ``/work/shared`` (a clean clone elsewhere still finds it).
    Tests that read it fail, never skip, when it is missing.
    """
    given = os.environ.get("MICROFAB_SHARED")
    if given:
        return Path(given)
    for candidate in (Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")):
        if candidate.is_dir():
            return candidate
    return Path(__file__).resolve().parents[2] / "shared"


SHARED = _shared_folder()
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_base_url() -> str:
    """The PostgreSQL server the tests may create databases on."""
    return os.environ.get("MICROFAB_TEST_PG", PG_DEFAULT)


def _libpq_url(url: str) -> str:
    """``url`` without any SQLAlchemy driver suffix, as psycopg wants it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_create_database() -> str:
    """Create an empty database on the test server; return its URL."""
    base = _libpq_url(pg_base_url())
    name = f"microfab_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(base).set(database=name).render_as_string(hide_password=False)


def pg_drop_database(url: str) -> None:
    base = _libpq_url(pg_base_url())
    name = make_url(url).database
    assert name is not None and name.startswith("microfab_test_")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    url = pg_create_database()
    try:
        yield url
    finally:
        pg_drop_database(url)


@pytest.fixture
def store(db_url: str) -> Iterator[EventStore]:
    """An event store opened (and migrated) on ``db_url``."""
    opened = open_store(db_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def small_factory_text() -> str:
    return (DATA / "factory-small.yaml").read_text(encoding="utf-8")


@pytest.fixture
def mosquitto() -> Iterator[MosquittoServer]:
    """A private Mosquitto broker on a free loopback port (killable; see tests/services.py)."""
    with mosquitto_server() as server:
        yield server
