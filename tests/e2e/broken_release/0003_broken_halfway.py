"""Release 2.1.0-broken of the reference app, for the upgrade tests only: fails halfway.

Its first half commits (a new column, every link's note rewritten) before the second half
fails, so the database is left half-migrated: only restoring the pre-upgrade backup undoes it.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Commits a first half that changes data, then fails."""
    with op.get_context().autocommit_block():
        op.add_column("links", sa.Column("title", sa.Text(), nullable=True))
        op.execute("UPDATE links SET note = note || ' [half-migrated by 2.1.0]'")
    raise RuntimeError("0003: deliberately broken halfway, after rewriting every link's note")


def downgrade() -> None:
    """There is no way back but the backup."""
    raise RuntimeError("0003 has no downgrade")
