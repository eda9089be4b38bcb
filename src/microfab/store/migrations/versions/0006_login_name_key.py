"""A key the store keeps for hashing unknown user names in login attempts; old rows hashed.

A login whose user name is not a user's is recorded under a keyed hash of the name
(``hmac:`` + HMAC-SHA-256, first 40 hex digits), never the text: people type passwords into
the name field. This revision creates ``store_secrets``; when unknown names are already stored it
makes the random ``login_names`` key and rewrites them the same way, so no typed password stays
in clear (rows of existing users keep their names). Otherwise the key is made at the first login
(:func:`microfab.store.identity._login_name_key`), so an empty store stays empty.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KEY_NAME = "login_names"
HASHED_PREFIX = "hmac:"


def name_digest(key: str, name: str) -> str:
    """Frozen copy of :func:`microfab.store.identity.login_name_digest` (a test compares them)."""
    mac = hmac.new(key.encode("utf-8"), name.encode("utf-8"), hashlib.sha256)
    return HASHED_PREFIX + mac.hexdigest()[:40]


def upgrade() -> None:
    store_secrets = op.create_table(
        "store_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )
    bind = op.get_bind()
    attempts = sa.table(
        "login_attempts", sa.column("seq", sa.Integer), sa.column("user_name", sa.String)
    )
    users = sa.table("users", sa.column("name", sa.String))
    known = {row[0] for row in bind.execute(sa.select(users.c.name))}
    rows = [
        (seq, name)
        for seq, name in bind.execute(sa.select(attempts.c.seq, attempts.c.user_name))
        if name not in known and not name.startswith(HASHED_PREFIX)
    ]
    if not rows:
        return  # nothing to hash: the key is made at the first login (an empty store stays empty)
    key = secrets.token_hex(32)
    op.bulk_insert(store_secrets, [{"name": KEY_NAME, "value": key}])
    for seq, name in rows:
        bind.execute(
            sa.update(attempts)
            .where(attempts.c.seq == seq)
            .values(user_name=name_digest(key, name))
        )


def downgrade() -> None:
    op.drop_table("store_secrets")
