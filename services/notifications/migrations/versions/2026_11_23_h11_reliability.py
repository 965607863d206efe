"""reliability: parked events, where the broker put each outbox row, versions that only move forward (issue #11)

Revision ID: h11_1
Revises: 0002
Create Date: 2026-11-23 18:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'h11_1'
down_revision: str | None = 'h9b_3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('parked_events',
    sa.Column('consumer', sa.String(length=100), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('envelope', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='1', nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('parked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('consumer', 'event_id', name=op.f('pk_parked_events'))
    )
    op.create_index('ix_parked_events_due', 'parked_events', ['consumer', 'next_attempt_at'], unique=False)
    op.create_index('ix_parked_events_reference', 'parked_events', ['consumer', 'reference'], unique=False)
    op.create_table('broker_partitions',
    sa.Column('topic', sa.String(length=100), nullable=False),
    sa.Column('partition', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('max_offset', sa.BigInteger(), nullable=False),
    sa.Column('cluster_id', sa.String(length=200), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('topic', 'partition', name=op.f('pk_broker_partitions'))
    )
    op.add_column('outbox', sa.Column('published_epoch', sa.Integer(), nullable=True))
    op.add_column('outbox', sa.Column('partition', sa.Integer(), nullable=True))
    op.add_column('outbox', sa.Column('offset', sa.BigInteger(), nullable=True))
    op.add_column('outbox', sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_outbox_unconfirmed', 'outbox', ['topic', 'partition', 'offset'], unique=False,
                    postgresql_where=sa.text('published_at IS NOT NULL AND confirmed_at IS NULL'))
    op.create_index('ix_outbox_unpublished', 'outbox', ['seq'], unique=False,
                    postgresql_where=sa.text('published_at IS NULL'))
    op.create_index('ix_outbox_created_at', 'outbox', ['created_at'], unique=False)
    op.add_column('recipients', sa.Column('member_version', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    op.drop_column('recipients', 'member_version')
    op.drop_index('ix_outbox_created_at', table_name='outbox')
    op.drop_index('ix_outbox_unpublished', table_name='outbox', postgresql_where=sa.text('published_at IS NULL'))
    op.drop_index('ix_outbox_unconfirmed', table_name='outbox',
                  postgresql_where=sa.text('published_at IS NOT NULL AND confirmed_at IS NULL'))
    op.drop_column('outbox', 'confirmed_at')
    op.drop_column('outbox', 'offset')
    op.drop_column('outbox', 'partition')
    op.drop_column('outbox', 'published_epoch')
    op.drop_table('broker_partitions')
    op.drop_index('ix_parked_events_reference', table_name='parked_events')
    op.drop_index('ix_parked_events_due', table_name='parked_events')
    op.drop_table('parked_events')
