"""Add links.domain (release 2.0.0) and backfill it from each link's URL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The host part of an http(s) URL, as models.domain_of computes it for new links.
BACKFILL = r"""
UPDATE links
SET domain = lower(coalesce(substring(url from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^:/?#]*)'), ''))
"""


def upgrade() -> None:
    """Add ``domain`` and fill it in for every existing link."""
    op.add_column("links", sa.Column("domain", sa.Text(), nullable=False, server_default=""))
    op.execute(BACKFILL)
    op.create_index("links_domain", "links", ["domain"])


def downgrade() -> None:
    """Drop ``domain``."""
    op.drop_index("links_domain", table_name="links")
    op.drop_column("links", "domain")
