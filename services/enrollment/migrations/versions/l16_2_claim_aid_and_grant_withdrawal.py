"""claim_aid (one claim's current aid) and loyalty_grants.version / withdrawn_at: 第十五条 follows revocations,
reversals and adjustments

Revision ID: l16_2
Revises: r16_1
Create Date: 2026-12-08 01:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'l16_2'
down_revision: str | None = 'r16_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'claim_aid',
        sa.Column('claim_id', sa.String(length=120), nullable=False),
        sa.Column('member_id', sa.UUID(), nullable=False),
        sa.Column('period', sa.String(length=50), nullable=False),
        sa.Column('aid', sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column('ended', sa.Boolean(), server_default='false', nullable=False),
        sa.Column('adjusted_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('claim_id', name=op.f('pk_claim_aid')),
    )
    op.create_index('ix_claim_aid_member_id_period', 'claim_aid', ['member_id', 'period'])
    # Aid learned before claims were kept one by one: its claims are not known, so it stays counted as it was
    # (a later revocation of one of those claims cannot be matched to it).
    op.execute("INSERT INTO claim_aid (claim_id, member_id, period, aid) "
               "SELECT 'before-l16:' || member_id || ':' || period, member_id, period, aid_total FROM member_aid")
    op.add_column('loyalty_grants', sa.Column('version', sa.Integer(), server_default='1', nullable=False))
    op.add_column('loyalty_grants', sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('loyalty_grants', 'withdrawn_at')
    op.drop_column('loyalty_grants', 'version')
    op.drop_index('ix_claim_aid_member_id_period', table_name='claim_aid')
    op.drop_table('claim_aid')
