"""Alerts raised by the alert rules, and their deliveries (MQTT, webhook, e-mail).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", Seq, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("machine", sa.String(210), nullable=False),
        sa.Column("cause", sa.String(200), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("first_ts", When, nullable=False),
        sa.Column("last_ts", When, nullable=False),
        sa.Column("occurrences", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("raised_at", When, nullable=False),
        sa.Column("acked_at", When),
        sa.Column("acked_by", sa.String(200)),
        sa.Column("closed_at", When),
        sa.Column("closed_by", sa.String(200)),
        sa.UniqueConstraint("rule", "machine", "cause", "first_ts", name="uq_alerts_occurrence"),
    )
    op.create_index("ix_alerts_key", "alerts", ["rule", "machine", "cause"])
    op.create_index("ix_alerts_state", "alerts", ["state"])
    op.create_table(
        "alert_deliveries",
        sa.Column("alert_id", Seq, primary_key=True, autoincrement=False),
        sa.Column("event", sa.String(16), primary_key=True),
        sa.Column("channel", sa.String(300), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("delivered_at", When),
        sa.Column("error", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_index("ix_alerts_state", table_name="alerts")
    op.drop_index("ix_alerts_key", table_name="alerts")
    op.drop_table("alerts")
