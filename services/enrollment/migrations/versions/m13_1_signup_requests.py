"""signup_requests: a member's own sign-up in the app (ID number + phone + a code sent to that phone)

Revision ID: m13_1
Revises: h11_1
Create Date: 2026-11-23 21:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'm13_1'
down_revision: str | None = 'h11_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'signup_requests',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('certno_key', sa.String(length=64), nullable=False),
        sa.Column('phone_key', sa.String(length=64), nullable=False),
        sa.Column('member_id', postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column('code_hash', sa.String(length=64), nullable=True),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_signup_requests')),
    )
    op.create_index('ix_signup_requests_certno', 'signup_requests', ['certno_key', 'created_at'])
    op.create_index('ix_signup_requests_phone', 'signup_requests', ['phone_key', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_signup_requests_phone', table_name='signup_requests')
    op.drop_index('ix_signup_requests_certno', table_name='signup_requests')
    op.drop_table('signup_requests')
