"""deliveries (sms, e-mail outbox), members' channel preferences, recipients' e-mail (issue #13)

Revision ID: w13_1
Revises: h9b_3
Create Date: 2026-11-23 19:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'w13_1'
down_revision: str | None = 'h11_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('recipients', sa.Column('email', sa.String(length=254), nullable=True))
    op.create_table(
        'deliveries',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('notification_id', sa.UUID(), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('address', sa.String(length=254), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('provider_ref', sa.String(length=100), nullable=True),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'],
                                name=op.f('fk_deliveries_notification_id_notifications')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    )
    op.create_index('ix_deliveries_due', 'deliveries', ['status', 'next_attempt_at'], unique=False)
    op.create_index(op.f('ix_deliveries_notification_id'), 'deliveries', ['notification_id'], unique=False)
    op.create_table(
        'notification_preferences',
        sa.Column('member_id', sa.String(length=40), nullable=False),
        sa.Column('sms', sa.Boolean(), nullable=False),
        sa.Column('email', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('member_id', name=op.f('pk_notification_preferences')),
    )


def downgrade() -> None:
    op.drop_table('notification_preferences')
    op.drop_index(op.f('ix_deliveries_notification_id'), table_name='deliveries')
    op.drop_index('ix_deliveries_due', table_name='deliveries')
    op.drop_table('deliveries')
    op.drop_column('recipients', 'email')
