"""Maintenance work orders and preventive plans, spare parts and their issues, and the safety
incident and near-miss register.

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "maint_orders",
        sa.Column("id", Seq, primary_key=True, autoincrement=True),
        sa.Column("machine", sa.String(210), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_ref", sa.String(200), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("problem", sa.Text, nullable=False),
        sa.Column("cause_code", sa.String(64)),
        sa.Column("actions", sa.Text, nullable=False),
        sa.Column("technician", sa.String(200)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_at", When, nullable=False),
        sa.Column("window_start", When),
        sa.Column("window_end", When),
        sa.Column("started_at", When),
        sa.Column("finished_at", When),
        sa.Column("result", sa.Text),
        sa.Column("labour_min", sa.Float, nullable=False),
        sa.Column("labour_cost", sa.Float, nullable=False),
        sa.Column("plan_id", sa.Integer),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("photos", sa.JSON, nullable=False),
    )
    op.create_index("ix_maint_orders_machine", "maint_orders", ["machine"])
    op.create_index("ix_maint_orders_state", "maint_orders", ["state"])
    op.create_table(
        "maint_plans",
        sa.Column("id", Seq, primary_key=True, autoincrement=True),
        sa.Column("machine", sa.String(210), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("basis", sa.String(16), nullable=False),
        sa.Column("interval", sa.Float, nullable=False),
        sa.Column("lead", sa.Float, nullable=False),
        sa.Column("metric", sa.String(64)),
        sa.Column("limit", sa.Float),
        sa.Column("duration_min", sa.Float, nullable=False),
        sa.Column("since", When, nullable=False),
        sa.Column("active", sa.Integer, nullable=False),
        sa.UniqueConstraint("machine", "name", name="uq_maint_plans_name"),
    )
    op.create_table(
        "spare_parts",
        sa.Column("part", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("on_hand", sa.Float, nullable=False),
        sa.Column("min_stock", sa.Float, nullable=False),
        sa.Column("critical", sa.Integer, nullable=False),
        sa.Column("unit_cost", sa.Float, nullable=False),
    )
    op.create_table(
        "part_issues",
        sa.Column("id", Seq, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("part", sa.String(64), nullable=False),
        sa.Column("qty", sa.Float, nullable=False),
        sa.Column("unit_cost", sa.Float, nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("by", sa.String(200), nullable=False),
    )
    op.create_index("ix_part_issues_order", "part_issues", ["order_id"])
    op.create_table(
        "maint_photos",
        sa.Column("id", Seq, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),  # base64
        sa.Column("at", When, nullable=False),
        sa.Column("by", sa.String(200), nullable=False),
    )
    op.create_index("ix_maint_photos_order", "maint_photos", ["order_id"])
    op.create_table(
        "safety_incidents",
        sa.Column("id", Seq, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(40), nullable=False),
        sa.Column("machine", sa.String(210)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("what", sa.Text, nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("reported_by", sa.String(200), nullable=False),
        sa.Column("injury", sa.Integer, nullable=False),
        sa.Column("lost_time", sa.Integer, nullable=False),
        sa.Column("occurred_at", When, nullable=False),
        sa.Column("actions", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("closed_at", When),
        sa.Column("closed_by", sa.String(200)),
        sa.Column("event_id", sa.String(64)),
    )
    op.create_index("ix_safety_incidents_site", "safety_incidents", ["site"])


def downgrade() -> None:
    op.drop_index("ix_safety_incidents_site", table_name="safety_incidents")
    op.drop_table("safety_incidents")
    op.drop_index("ix_maint_photos_order", table_name="maint_photos")
    op.drop_table("maint_photos")
    op.drop_index("ix_part_issues_order", table_name="part_issues")
    op.drop_table("part_issues")
    op.drop_table("spare_parts")
    op.drop_table("maint_plans")
    op.drop_index("ix_maint_orders_state", table_name="maint_orders")
    op.drop_index("ix_maint_orders_machine", table_name="maint_orders")
    op.drop_table("maint_orders")
