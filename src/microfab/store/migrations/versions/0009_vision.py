"""Vision inspection models: each model card a station has used, kept with its measured figures
(the funding evidence's AI/ML criterion reads it).

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "vision_models",
        sa.Column("model", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("task", sa.String(16), nullable=False),
        sa.Column("card", sa.JSON, nullable=False),
        sa.Column("registered_at", When, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vision_models")
