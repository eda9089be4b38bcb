"""Stock read model: movement legs with running balances, balances now, lots.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
EventId = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "stock_moves",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("event_id", EventId, nullable=False),
        sa.Column("ts", When, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("item", sa.String(64), nullable=False),
        sa.Column("lot", sa.String(64), nullable=False),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("delta", sa.BigInteger, nullable=False),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("counted", sa.SmallInteger, nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_stock_moves_key", "stock_moves", ["item", "lot", "location", "ts", "event_id"]
    )
    op.create_index("ix_stock_moves_ts", "stock_moves", ["ts"])
    op.create_index("ix_stock_moves_lot", "stock_moves", ["lot"])
    op.create_index("ix_stock_moves_order", "stock_moves", ["order_id"])
    op.create_table(
        "stock_balances",
        sa.Column("item", sa.String(64), primary_key=True),
        sa.Column("lot", sa.String(64), primary_key=True),
        sa.Column("location", sa.String(64), primary_key=True),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("qty", sa.BigInteger, nullable=False),
        sa.Column("first_ts", When, nullable=False),
        sa.Column("last_ts", When, nullable=False),
        sa.Column("last_event", EventId, nullable=False),
    )
    op.create_index("ix_stock_balances_location", "stock_balances", ["location"])
    op.create_index("ix_stock_balances_last_ts", "stock_balances", ["last_ts"])
    op.create_table(
        "stock_lots",
        sa.Column("item", sa.String(64), primary_key=True),
        sa.Column("lot", sa.String(64), primary_key=True),
        sa.Column("supplier", sa.String(64)),
        sa.Column("expiry", When),
        sa.Column("received_ts", When),
        sa.Column("cost_hkd", sa.Float),
        sa.Column("held", sa.SmallInteger, nullable=False),
        sa.Column("hold_ts", When),
        sa.Column("hold_event", EventId),
        sa.Column("hold_reason", sa.String(64)),
    )
    op.create_index("ix_stock_lots_expiry", "stock_lots", ["expiry"])
    # stock events stored before this revision: none (the stream is new)


def downgrade() -> None:
    op.drop_index("ix_stock_lots_expiry", "stock_lots")
    op.drop_table("stock_lots")
    op.drop_index("ix_stock_balances_last_ts", "stock_balances")
    op.drop_index("ix_stock_balances_location", "stock_balances")
    op.drop_table("stock_balances")
    for name in (
        "ix_stock_moves_order",
        "ix_stock_moves_lot",
        "ix_stock_moves_ts",
        "ix_stock_moves_key",
    ):
        op.drop_index(name, "stock_moves")
    op.drop_table("stock_moves")
