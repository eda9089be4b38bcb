"""Shared fixtures: a database URL on each back end, and an opened event store on it."""

from __future__ import annotations

import os
import shutil
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

# A terminal size in the environment (pytest-xdist's workers get COLUMNS=80, LINES=24) would fix
# the width of the CLI's rich consoles when they are made, at import; tests that give one command
# its own COLUMNS would then still print 80 columns. Tests run with no terminal size set.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)

# Hypothesis keeps a cache of source constants; keep it out of the working tree.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "microfab-hypothesis")
)

DATA = Path(__file__).parent / "data"


ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "bench" / "data" / "benchmarks"
"""Scheduling benchmark instances shipped in the repository (sources: bench/data/README.md)."""

PACT_SPEC_FILE = "pact-openapi-3.0.3.yaml"
PACT_SPEC_SKIP = (
    "needs the PACT v3.0.3 specification, which may not be redistributed: set MICROFAB_PACT_SPEC "
    f"to a folder holding {PACT_SPEC_FILE} (.ci/run sets it from ../shared/reference/pact)"
)


def pact_spec() -> Path:
    """The folder of WBCSD's PACT specification files, named by ``$MICROFAB_PACT_SPEC``.

    Skips the calling test when the variable is unset; fails it when the variable names a folder
    without the specification (a wrong setting must not pass as a skip).
    """
    given = os.environ.get("MICROFAB_PACT_SPEC")
    if not given:
        pytest.skip(PACT_SPEC_SKIP)
    folder = Path(given)
    if not (folder / PACT_SPEC_FILE).is_file():
        pytest.fail(f"MICROFAB_PACT_SPEC={given}: no {PACT_SPEC_FILE} in that folder")
    return folder


PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_base_url() -> str:
    """The PostgreSQL server the tests may create databases on."""
    return os.environ.get("MICROFAB_TEST_PG", PG_DEFAULT)


def _libpq_url(url: str) -> str:
    """``url`` without any SQLAlchemy driver suffix, as psycopg wants it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_create_database(template: str | None = None) -> str:
    """Create a database on the test server, empty or a copy of ``template``; return its URL."""
    base = _libpq_url(pg_base_url())
    name = f"microfab_test_{uuid.uuid4().hex[:12]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(create)
    return make_url(base).set(database=name).render_as_string(hide_password=False)


def pg_drop_database(url: str) -> None:
    base = _libpq_url(pg_base_url())
    name = make_url(url).database
    assert name is not None and name.startswith("microfab_test_")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """The name of a PostgreSQL database migrated to the newest schema once per test session.

    Each test's database is a copy of it (``CREATE DATABASE … TEMPLATE``), which is faster than
    running the migrations again; nothing may stay connected to it, so the store is closed.
    """
    url = pg_create_database()
    try:
        open_store(url).close()
        name = make_url(url).database
        assert name is not None
        yield name
    finally:
        pg_drop_database(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the newest schema once per test session, copied per test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "store.db"
    open_store(f"sqlite:///{path}").close()
    return path


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a fresh database with the newest schema and no events: a SQLite file, or a new
    PostgreSQL database (each a copy of a template migrated once per session)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, tmp_path / "store.db")
        yield f"sqlite:///{tmp_path}/store.db"
        return
    url = pg_create_database(template=request.getfixturevalue("pg_template"))
    try:
        yield url
    finally:
        pg_drop_database(url)


@pytest.fixture
def store(db_url: str) -> Iterator[EventStore]:
    """An event store opened on ``db_url`` (already migrated: opening checks the schema)."""
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
