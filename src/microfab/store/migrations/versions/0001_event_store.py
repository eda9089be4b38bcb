"""Event log, factory versions and the machine/order read models.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)
EventId = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")  # byte order


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", EventId, nullable=False),
        sa.Column("ts", When, nullable=False),
        sa.Column("ingest_ts", When, nullable=False),
        sa.Column("machine", sa.String(210), nullable=False),
        sa.Column("stream", sa.String(16), nullable=False),
        sa.Column("schema_version", sa.SmallInteger, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.UniqueConstraint("id", name="uq_events_id"),
    )
    op.create_index("ix_events_ts_id", "events", ["ts", "id"])
    op.create_index("ix_events_machine_stream_ts", "events", ["machine", "stream", "ts"])
    op.create_table(
        "factory_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("applied_at", When, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("company", sa.String(200), nullable=False),
        sa.Column("source_name", sa.String(500), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
    )
    op.create_table(
        "machine_status",
        sa.Column("machine", sa.String(210), primary_key=True),
        sa.Column("state", sa.String(16)),
        sa.Column("reason", sa.String(64)),
        sa.Column("state_ts", When),
        sa.Column("state_event", sa.String(64)),
        sa.Column("good", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("scrap", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("kwh", sa.Float),
        sa.Column("kwh_ts", When),
        sa.Column("order_id", sa.String(64)),
        sa.Column("order_ts", When),
        sa.Column("last_ts", When),
        sa.Column("events", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "order_status",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("product", sa.String(64)),
        sa.Column("quantity", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("operation", sa.Integer),
        sa.Column("machine", sa.String(210)),
        sa.Column("operation_ts", When),
        sa.Column("released_ts", When),
        sa.Column("release_ts", When),
        sa.Column("release_event", sa.String(64)),
        sa.Column("completed_ts", When),
        sa.Column("last_ts", When, nullable=False),
        sa.Column("good", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("scrap", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("order_status")
    op.drop_table("machine_status")
    op.drop_table("factory_versions")
    op.drop_index("ix_events_machine_stream_ts", table_name="events")
    op.drop_index("ix_events_ts_id", table_name="events")
    op.drop_table("events")
