"""bureau feeds: settlement columns read from the record, feed receipts and bureau totals (issue #12)

Revision ID: b12_1
Revises: h11_1
Create Date: 2026-11-23 21:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b12_1'
down_revision: str | None = 'c10_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('settlements', sa.Column('setl_date', sa.Date(), nullable=True))
    op.add_column('settlements', sa.Column('insutype', sa.String(length=10), nullable=True))
    op.add_column('settlements', sa.Column('med_type', sa.String(length=10), nullable=True))
    op.add_column('settlements', sa.Column('medfee_sumamt', sa.Numeric(16, 2), nullable=True))
    op.add_column('settlements', sa.Column('psn_part_amt', sa.Numeric(16, 2), nullable=True))
    op.create_table('feed_receipts',
    sa.Column('sender_org', sa.String(length=50), nullable=False),
    sa.Column('digest', sa.LargeBinary(length=16), nullable=False),
    sa.Column('setl_date', sa.Date(), nullable=False),
    sa.Column('insutype', sa.String(length=10), nullable=False),
    sa.Column('medfee_sumamt', sa.Numeric(16, 2), nullable=False),
    sa.Column('psn_part_amt', sa.Numeric(16, 2), nullable=False),
    sa.PrimaryKeyConstraint('sender_org', 'digest', name=op.f('pk_feed_receipts'))
    )
    op.create_table('bureau_totals',
    sa.Column('sender_org', sa.String(length=50), nullable=False),
    sa.Column('setl_date', sa.Date(), nullable=False),
    sa.Column('insutype', sa.String(length=10), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('medfee_sumamt', sa.Numeric(18, 2), nullable=False),
    sa.Column('psn_part_amt', sa.Numeric(18, 2), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('sender_org', 'setl_date', 'insutype', name=op.f('pk_bureau_totals'))
    )


def downgrade() -> None:
    op.drop_table('bureau_totals')
    op.drop_table('feed_receipts')
    for column in ('psn_part_amt', 'medfee_sumamt', 'med_type', 'insutype', 'setl_date'):
        op.drop_column('settlements', column)
