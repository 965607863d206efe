"""member releases: the audited way a member leaves one unit for another (issue #9)

Revision ID: h9b_1
Revises: 0006
Create Date: 2026-11-23 18:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'h9b_1'
down_revision: str | None = 'h8b_1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'member_releases',
        sa.Column('id', postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column('member_id', postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column('from_unit', sa.String(length=50), nullable=False),
        sa.Column('to_unit', sa.String(length=50), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('released_by', sa.String(length=100), nullable=False),
        sa.Column('released_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('used_by_roster', postgresql.UUID(as_uuid=True), nullable=True),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_member_releases_member_id_members')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_member_releases')),
    )
    op.create_index(op.f('ix_member_releases_member_id'), 'member_releases', ['member_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_member_releases_member_id'), table_name='member_releases')
    op.drop_table('member_releases')
