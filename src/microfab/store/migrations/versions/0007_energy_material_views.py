"""Energy and material read models: metered energy per machine × carrier × site hour (with the
meter intervals it is split from), and material consumed per machine × order × site hour.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "meter_intervals",
        sa.Column("machine", sa.String(210), nullable=False),
        sa.Column("carrier", sa.String(32), nullable=False),
        sa.Column("start", When, nullable=False),
        sa.Column("end", When, nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("milli", sa.BigInteger, nullable=False),
        sa.Column("anomaly", sa.String(16), nullable=False),
    )
    op.create_index("ix_meter_intervals_meter", "meter_intervals", ["machine", "carrier", "start"])
    op.create_table(
        "energy_hourly",
        sa.Column("machine", sa.String(210), primary_key=True),
        sa.Column("carrier", sa.String(32), primary_key=True),
        sa.Column("hour", When, primary_key=True),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("milli", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_energy_hourly_hour", "energy_hourly", ["hour"])
    op.create_table(
        "material_hourly",
        sa.Column("machine", sa.String(210), primary_key=True),
        sa.Column("hour", When, primary_key=True),
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("material", sa.String(64), primary_key=True),
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("milli", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_material_hourly_hour", "material_hourly", ["hour"])
    # the model is empty: have the next read take the whole log in again
    op.execute("DELETE FROM view_checkpoints")


def downgrade() -> None:
    op.drop_index("ix_material_hourly_hour", "material_hourly")
    op.drop_table("material_hourly")
    op.drop_index("ix_energy_hourly_hour", "energy_hourly")
    op.drop_table("energy_hourly")
    op.drop_index("ix_meter_intervals_meter", "meter_intervals")
    op.drop_table("meter_intervals")
