"""claim_payment_events: each payment event about a claim as claims received it (the member's timeline)

Revision ID: m13_1
Revises: h11_1
Create Date: 2026-11-23 21:25:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'm13_1'
down_revision: str | None = 'b12_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'claim_payment_events',
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column('claim_id', sa.String(length=40), nullable=False),
        sa.Column('instruction_id', sa.String(length=40), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('adjustment_id', sa.String(length=40), server_default='', nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('amount', sa.Numeric(14, 2), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_payment_events')),
        sa.UniqueConstraint('instruction_id', 'attempt', 'kind', name=op.f('uq_claim_payment_events_once')),
    )
    op.create_index(op.f('ix_claim_payment_events_claim_id'), 'claim_payment_events', ['claim_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_claim_payment_events_claim_id'), table_name='claim_payment_events')
    op.drop_table('claim_payment_events')
