"""claims record the submitter's organisation and path; the claim list pages by (created_at, id) (issue #10);
the claim's check against the bureau's settlement record (issue #12)

Revision ID: c10_1
Revises: h11_1
Create Date: 2026-11-23 21:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'c10_1'
down_revision: str | None = 'h11_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('claims', sa.Column('submitter_org', sa.String(length=50), nullable=True))
    op.add_column('claims', sa.Column('submitter_path', postgresql.ARRAY(sa.String(length=50)),
                                      server_default='{}', nullable=False))
    op.create_index('ix_claims_created', 'claims', ['created_at', 'id'], unique=False)
    op.add_column('claims', sa.Column('settlement_check', postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column('claims', 'settlement_check')
    op.drop_index('ix_claims_created', table_name='claims')
    op.drop_column('claims', 'submitter_path')
    op.drop_column('claims', 'submitter_org')
