"""Factory model versions: each validated factory model applied is stored once, numbered 1, 2, 3 …"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.engine import Connection

from microfab.model.factory import Factory
from microfab.store import schema


def apply_factory(conn: Connection, factory: Factory, source_name: str) -> tuple[int, bool]:
    """Store a validated factory model as a new version unless the same model is stored
    already; returns (version, created)."""
    document = factory.model_dump(mode="json")
    digest = _digest_json(document)
    table = schema.factory_versions
    found = conn.scalar(select(table.c.version).where(table.c.digest == digest))
    if found is not None:
        return int(found), False
    version = int(conn.scalar(select(func.coalesce(func.max(table.c.version), 0))) or 0) + 1
    conn.execute(
        insert(table).values(
            version=version,
            applied_at=dt.datetime.now(dt.UTC),
            digest=digest,
            company=factory.company.name,
            source_name=source_name,
            document=document,
        )
    )
    return version, True


def factory_version(engine: Engine) -> int | None:
    """The newest applied factory model's version, or None when none was applied."""
    table = schema.factory_versions
    with engine.connect() as conn:
        found = conn.scalar(select(func.max(table.c.version)))
    return None if found is None else int(found)


def factory(engine: Engine, version: int | None = None) -> tuple[int, Factory] | None:
    """The newest applied factory model (or a given version), or None when none was applied."""
    table = schema.factory_versions
    stmt = select(table.c.version, table.c.document)
    stmt = (
        stmt.where(table.c.version == version) if version else stmt.order_by(table.c.version.desc())
    )
    with engine.connect() as conn:
        row = conn.execute(stmt.limit(1)).first()
    if row is None:
        return None
    document = row[1] if isinstance(row[1], dict) else json.loads(row[1])
    return int(row[0]), Factory.model_validate(document)


def _digest_json(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
