"""held instructions: a payee account changed in the last days holds its payments until finance confirms

Revision ID: h9b_2
Revises: 0004
Create Date: 2026-11-23 18:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'h9b_2'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_LIVE = sa.text("status IN ('pending', 'batched', 'paid')")
LIVE = sa.text("status IN ('pending', 'held', 'batched', 'paid')")


def upgrade() -> None:
    op.add_column('payees', sa.Column('account_changed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('payees', sa.Column('account_changed_by', sa.String(length=60), nullable=True))
    op.add_column('payment_instructions', sa.Column('hold_reason', sa.String(length=200), nullable=True))
    op.add_column('payment_instructions', sa.Column('hold_confirmed_by', sa.String(length=60), nullable=True))
    op.add_column('payment_instructions', sa.Column('hold_confirmed_by_name', sa.String(length=100), nullable=True))
    op.add_column('payment_instructions', sa.Column('hold_confirmed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('payment_instructions', sa.Column('hold_confirm_note', sa.String(length=500), nullable=True))
    # A held instruction is live: still one live instruction per claim's aid (or top-up).
    op.drop_index('uq_payment_instructions_live_claim', table_name='payment_instructions', postgresql_where=OLD_LIVE)
    op.create_index('uq_payment_instructions_live_claim', 'payment_instructions', ['claim_id', 'adjustment_id'],
                    unique=True, postgresql_where=LIVE)


def downgrade() -> None:
    op.drop_index('uq_payment_instructions_live_claim', table_name='payment_instructions', postgresql_where=LIVE)
    op.create_index('uq_payment_instructions_live_claim', 'payment_instructions', ['claim_id', 'adjustment_id'],
                    unique=True, postgresql_where=OLD_LIVE)
    for column in ('hold_confirm_note', 'hold_confirmed_at', 'hold_confirmed_by_name', 'hold_confirmed_by',
                   'hold_reason'):
        op.drop_column('payment_instructions', column)
    op.drop_column('payees', 'account_changed_by')
    op.drop_column('payees', 'account_changed_at')
