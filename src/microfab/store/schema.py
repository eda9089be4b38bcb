"""Table definitions of the event store (SQLAlchemy Core); Alembic migrations create them.

``events`` is the append-only log. ``machine_status`` and ``order_status`` are read models updated
in the same transaction as each append, so they always agree with the log.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

SeqType = BigInteger().with_variant(Integer(), "sqlite")
"""Monotonic ingest sequence; INTEGER on SQLite so that it aliases the rowid."""

EventIdType = String(64).with_variant(String(64, collation="C"), "postgresql")
"""Event ids compare byte-wise on every back end, so (ts, id) order is the same everywhere."""

events = Table(
    "events",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("id", EventIdType, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("ingest_ts", DateTime(timezone=True), nullable=False),
    Column("machine", String(210), nullable=False),
    Column("stream", String(16), nullable=False),
    Column("schema_version", SmallInteger, nullable=False),
    Column("body", JSON, nullable=False),
    Column("digest", String(64), nullable=False),
    UniqueConstraint("id", name="uq_events_id"),
    Index("ix_events_ts_id", "ts", "id"),
    Index("ix_events_machine_stream_ts", "machine", "stream", "ts"),
)

factory_versions = Table(
    "factory_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    Column("company", String(200), nullable=False),
    Column("source_name", String(500), nullable=False),
    Column("document", JSON, nullable=False),
)

machine_status = Table(
    "machine_status",
    metadata,
    Column("machine", String(210), primary_key=True),
    Column("state", String(16)),
    Column("reason", String(64)),
    Column("state_ts", DateTime(timezone=True)),
    Column("state_event", String(64)),
    Column("good", BigInteger, nullable=False, default=0),
    Column("scrap", BigInteger, nullable=False, default=0),
    Column("kwh", Float),
    Column("kwh_ts", DateTime(timezone=True)),
    Column("order_id", String(64)),
    Column("order_ts", DateTime(timezone=True)),
    Column("last_ts", DateTime(timezone=True)),
    Column("events", BigInteger, nullable=False, default=0),
)

order_status = Table(
    "order_status",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("product", String(64)),
    Column("quantity", Integer),
    Column("status", String(16), nullable=False),
    Column("operation", Integer),
    Column("machine", String(210)),
    Column("operation_ts", DateTime(timezone=True)),
    Column("released_ts", DateTime(timezone=True)),
    Column("release_ts", DateTime(timezone=True)),
    Column("release_event", String(64)),
    Column("completed_ts", DateTime(timezone=True)),
    Column("last_ts", DateTime(timezone=True), nullable=False),
    Column("good", BigInteger, nullable=False, default=0),
    Column("scrap", BigInteger, nullable=False, default=0),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("source", String(32), nullable=False),
    Column("topic", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("reason", Text, nullable=False),
    UniqueConstraint("key", name="uq_dead_letters_key"),
)

unknown_machines = Table(
    "unknown_machines",
    metadata,
    Column("machine", String(210), primary_key=True),
    Column("first_ts", DateTime(timezone=True), nullable=False),
    Column("last_ts", DateTime(timezone=True), nullable=False),
    Column("events", BigInteger, nullable=False, default=0),
)
