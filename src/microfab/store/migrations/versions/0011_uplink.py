"""Uplink checkpoints: how far a site's events have been acknowledged by an HQ broker.

One row per uplink (its key names the site and the HQ broker): the ingest sequence of the last
event the broker acknowledged with every earlier one, that event's time and ingest time (for the
lag in seconds), and when the row was written. ``microfab uplink`` reads it at start and moves it
forward only after PUBACKs, so any outage resumes from here.

``uplink_status`` (at HQ) keeps each site's uplink status as last reported (its lag).
``site_access`` lists the sites a site manager (``user:NAME`` or ``token:NAME``) may see at HQ.

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "uplink_checkpoints",
        sa.Column("uplink", sa.String(300), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("event_ts", When),
        sa.Column("ingest_ts", When),
        sa.Column("acknowledged", sa.BigInteger, nullable=False),
        sa.Column("updated_at", When, nullable=False),
    )

    op.create_table(
        "site_access",
        sa.Column("actor", sa.String(200), primary_key=True),
        sa.Column("site", sa.String(40), primary_key=True),
        sa.Column("granted_at", When, nullable=False),
        sa.Column("granted_by", sa.String(200), nullable=False),
    )

    op.create_table(
        "uplink_status",
        sa.Column("site", sa.String(40), primary_key=True),
        sa.Column("checkpoint", sa.BigInteger, nullable=False),
        sa.Column("lag_events", sa.BigInteger, nullable=False),
        sa.Column("lag_s", sa.Float, nullable=False),
        sa.Column("reported_at", When, nullable=False),
        sa.Column("received_at", When, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("uplink_status")
    op.drop_table("site_access")
    op.drop_table("uplink_checkpoints")
