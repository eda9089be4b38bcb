"""Dead letters (rejected messages with their reason) and machines seen but not in the factory.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("received_at", When, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.UniqueConstraint("key", name="uq_dead_letters_key"),
    )
    op.create_table(
        "unknown_machines",
        sa.Column("machine", sa.String(210), primary_key=True),
        sa.Column("first_ts", When, nullable=False),
        sa.Column("last_ts", When, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("unknown_machines")
    op.drop_table("dead_letters")
