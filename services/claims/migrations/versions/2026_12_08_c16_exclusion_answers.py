"""claim_steps.exclusions: the reviewer's answers to the exclusions checklist (第十二条) with each decision

Revision ID: c16_1
Revises: a12_1
Create Date: 2026-12-08 00:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'c16_1'
down_revision: str | None = 'a12_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('claim_steps', sa.Column('exclusions', postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column('claim_steps', 'exclusions')
