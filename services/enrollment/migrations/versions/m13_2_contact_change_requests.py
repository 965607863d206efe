"""contact_change_requests: a member's own change of phone or bank account, confirmed by a code sent to the
phone on file (PATCH /api/v1/me)

Revision ID: m13_2
Revises: m13_1
Create Date: 2026-12-08 00:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'm13_2'
down_revision: str | None = 'm13_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'contact_change_requests',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('member_id', postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column('phone_key', sa.String(length=64), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=True),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_change_requests')),
    )
    op.create_index('ix_contact_change_requests_member_id', 'contact_change_requests', ['member_id'])


def downgrade() -> None:
    op.drop_index('ix_contact_change_requests_member_id', table_name='contact_change_requests')
    op.drop_table('contact_change_requests')
