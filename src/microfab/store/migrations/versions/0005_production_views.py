"""Production read models: hourly counts per machine × order × operation, and state spans.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "production_hourly",
        sa.Column("machine", sa.String(210), primary_key=True),
        sa.Column("hour", When, primary_key=True),
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("operation", sa.Integer, primary_key=True),
        sa.Column("good", sa.BigInteger, nullable=False),
        sa.Column("scrap", sa.BigInteger, nullable=False),
        sa.Column("outside_good", sa.BigInteger, nullable=False),
        sa.Column("outside_scrap", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_production_hourly_hour", "production_hourly", ["hour"])
    op.create_index("ix_production_hourly_order", "production_hourly", ["order_id"])
    op.create_table(
        "state_spans",
        sa.Column("machine", sa.String(210), primary_key=True),
        sa.Column("start", When, primary_key=True),
        sa.Column("end", When),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("inside_s", sa.Float, nullable=False),
    )
    op.create_table(
        "view_checkpoints",
        sa.Column("view", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("factory_version", sa.Integer),
        sa.Column("updated_at", When, nullable=False),
    )
    op.create_table(
        "view_skipped",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("view_skipped")
    op.drop_table("view_checkpoints")
    op.drop_table("state_spans")
    op.drop_index("ix_production_hourly_order", "production_hourly")
    op.drop_index("ix_production_hourly_hour", "production_hourly")
    op.drop_table("production_hourly")
