"""Database URLs: the default location, driver selection and password masking."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from microfab.errors import InputError

DEFAULT_DB_URL = "sqlite:///microfab.db"
"""Where microfab keeps its data unless told otherwise: ``microfab.db`` in the working directory.
Override with ``--db`` or the ``MICROFAB_DB`` environment variable."""


def resolve_url(url: str | None) -> str:
    """The URL to use: the argument, else ``MICROFAB_DB``, else :data:`DEFAULT_DB_URL`."""
    from microfab.settings import load_settings

    return url or load_settings().db or DEFAULT_DB_URL


def engine_url(url: str) -> URL:
    """Parse a user URL and pick our driver (psycopg 3 for PostgreSQL)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(
            f"'{url}' is not a database URL; use sqlite:///FILE.db or postgresql://USER@HOST/DB"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed
    raise InputError(f"database '{backend}' is not supported; use sqlite:/// or postgresql://")


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by ``***`` (safe for logs and error messages)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return str(url)
    return parsed.render_as_string(hide_password=True)
