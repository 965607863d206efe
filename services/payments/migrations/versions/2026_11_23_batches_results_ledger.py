"""batches, bank results, retries, recoveries and the fund ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGERS = (
    """
    CREATE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF (SELECT coalesce(sum(amount), 0) FROM ledger_postings WHERE entry_id = NEW.entry_id) <> 0 THEN
            RAISE EXCEPTION 'ledger entry % does not balance', NEW.entry_id USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$;
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_postings_balanced AFTER INSERT ON ledger_postings
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();
    """,
    """
    CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'ledger postings are append-only' USING ERRCODE = 'check_violation';
    END $$;
    """,
    """
    CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
        FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
    """,
    """
    CREATE FUNCTION batched_instruction_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.batch_id IS NOT NULL AND NEW.batch_id IS NOT DISTINCT FROM OLD.batch_id AND
           (NEW.amount, NEW.payee_name, NEW.account, NEW.bank_name)
           IS DISTINCT FROM (OLD.amount, OLD.payee_name, OLD.account, OLD.bank_name) THEN
            RAISE EXCEPTION 'instruction % is in batch % and cannot change', OLD.id, OLD.batch_id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$;
    """,
    """
    CREATE TRIGGER payment_instructions_batched_immutable BEFORE UPDATE ON payment_instructions
        FOR EACH ROW EXECUTE FUNCTION batched_instruction_immutable();
    """,
)

LIVE = sa.text("status IN ('pending', 'batched', 'paid')")


def upgrade() -> None:
    # Instructions: a top-up is its own chain (claim_id, adjustment_id); attempts count within a chain.
    op.add_column('payment_instructions', sa.Column('kind', sa.String(20), server_default='aid', nullable=False))
    op.add_column('payment_instructions', sa.Column('adjustment_id', sa.String(40), server_default='',
                                                    nullable=False))
    op.add_column('payment_instructions', sa.Column('batch_id', sa.UUID(), nullable=True))
    op.add_column('payment_instructions', sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint('uq_payment_instructions_claim_id', 'payment_instructions', type_='unique')
    op.create_unique_constraint('uq_payment_instructions_identity', 'payment_instructions',
                                ['claim_id', 'adjustment_id', 'attempt'])
    op.drop_index('uq_payment_instructions_live_claim', table_name='payment_instructions', postgresql_where=LIVE)
    op.create_index('uq_payment_instructions_live_claim', 'payment_instructions', ['claim_id', 'adjustment_id'],
                    unique=True, postgresql_where=LIVE)
    op.create_index(op.f('ix_payment_instructions_batch_id'), 'payment_instructions', ['batch_id'])
    op.create_index('ix_payment_instructions_pending', 'payment_instructions', ['created_at'],
                    postgresql_where=sa.text("status = 'pending'"))

    op.create_table(
        'payment_batches',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('format', sa.String(20), nullable=False),
        sa.Column('status', sa.String(20), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('total', sa.Numeric(14, 2), nullable=False),
        sa.Column('execution_date', sa.Date(), nullable=False),
        sa.Column('cut_by', sa.String(60), nullable=False),
        sa.Column('cut_by_name', sa.String(100), nullable=False),
        sa.Column('cut_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('released_by', sa.String(60), nullable=True),
        sa.Column('released_by_name', sa.String(100), nullable=True),
        sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('voided_reason', sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_batches')),
    )
    op.create_table(
        'payment_batch_files',
        sa.Column('batch_id', sa.UUID(), nullable=False),
        sa.Column('filename', sa.String(100), nullable=False),
        sa.Column('media_type', sa.String(60), nullable=False),
        sa.Column('sha256', sa.String(64), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['payment_batches.id'],
                                name=op.f('fk_payment_batch_files_batch_id_payment_batches')),
        sa.PrimaryKeyConstraint('batch_id', name=op.f('pk_payment_batch_files')),
    )
    op.create_table(
        'revoked_claims',
        sa.Column('claim_id', sa.String(40), nullable=False),
        sa.Column('member_id', sa.String(40), nullable=False),
        sa.Column('period', sa.String(50), nullable=False),
        sa.Column('reason', sa.String(500), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('claim_id', name=op.f('pk_revoked_claims')),
    )
    op.create_table(
        'recoveries',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('source', sa.String(200), nullable=False),
        sa.Column('claim_id', sa.String(40), nullable=False),
        sa.Column('member_id', sa.String(40), nullable=False),
        sa.Column('period', sa.String(50), nullable=False),
        sa.Column('amount_due', sa.Numeric(14, 2), nullable=False),
        sa.Column('amount_recovered', sa.Numeric(14, 2), server_default='0', nullable=False),
        sa.Column('reason', sa.String(500), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recoveries')),
        sa.UniqueConstraint('source', name=op.f('uq_recoveries_source')),
        sa.CheckConstraint('amount_recovered <= amount_due', name=op.f('ck_recoveries_not_over')),
    )
    op.create_index(op.f('ix_recoveries_claim_id'), 'recoveries', ['claim_id'])
    op.create_table(
        'ledger_entries',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('period', sa.String(50), nullable=False),
        sa.Column('kind', sa.String(40), nullable=False),
        sa.Column('source', sa.String(200), nullable=False),
        sa.Column('memo', sa.String(300), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
        sa.UniqueConstraint('source', name=op.f('uq_ledger_entries_source')),
    )
    op.create_index(op.f('ix_ledger_entries_period'), 'ledger_entries', ['period'])
    op.create_table(
        'ledger_postings',
        sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column('entry_id', sa.UUID(), nullable=False),
        sa.Column('period', sa.String(50), nullable=False),
        sa.Column('account', sa.String(40), nullable=False),
        sa.Column('amount', sa.Numeric(14, 2), nullable=False),
        sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'],
                                name=op.f('fk_ledger_postings_entry_id_ledger_entries')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_postings')),
    )
    op.create_index(op.f('ix_ledger_postings_entry_id'), 'ledger_postings', ['entry_id'])
    op.create_index('ix_ledger_postings_period_account', 'ledger_postings', ['period', 'account'])
    op.create_table(
        'unit_roster_fees',
        sa.Column('member_id', sa.String(40), nullable=False),
        sa.Column('period', sa.String(50), nullable=False),
        sa.Column('unit', sa.String(40), nullable=False),
        sa.Column('office', sa.String(40), nullable=False),
        sa.Column('fee', sa.Numeric(14, 2), nullable=False),
        sa.PrimaryKeyConstraint('member_id', 'period', name=op.f('pk_unit_roster_fees')),
    )
    op.create_index(op.f('ix_unit_roster_fees_unit'), 'unit_roster_fees', ['unit'])
    op.create_table(
        'fees_receipts',
        sa.Column('event_id', sa.UUID(), nullable=False),
        sa.Column('roster_id', sa.String(40), nullable=False),
        sa.Column('period', sa.String(50), nullable=False),
        sa.Column('unit', sa.String(40), nullable=False),
        sa.Column('amount', sa.Numeric(14, 2), nullable=False),
        sa.Column('reference', sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint('event_id', name=op.f('pk_fees_receipts')),
    )
    op.create_index(op.f('ix_fees_receipts_period'), 'fees_receipts', ['period'])

    # The database itself refuses what must never happen, whatever code runs against it:
    # 1. a journal entry whose postings do not sum to zero (checked at commit, when all its postings are in);
    # 2. changing or deleting a posting (the ledger is append-only: corrections are new entries);
    # 3. changing the amount or payee of an instruction while it sits in a batch (a cut batch is immutable).
    for statement in TRIGGERS:  # asyncpg runs one statement per call
        op.execute(statement)


def downgrade() -> None:
    for statement in ("DROP TRIGGER payment_instructions_batched_immutable ON payment_instructions",
                      "DROP FUNCTION batched_instruction_immutable()",
                      "DROP TRIGGER ledger_postings_append_only ON ledger_postings",
                      "DROP FUNCTION ledger_append_only()",
                      "DROP TRIGGER ledger_postings_balanced ON ledger_postings",
                      "DROP FUNCTION ledger_entry_balanced()"):
        op.execute(statement)
    for table in ('fees_receipts', 'unit_roster_fees', 'ledger_postings', 'ledger_entries', 'recoveries',
                  'revoked_claims', 'payment_batch_files', 'payment_batches'):
        op.drop_table(table)
    op.drop_index('ix_payment_instructions_pending', table_name='payment_instructions')
    op.drop_index(op.f('ix_payment_instructions_batch_id'), table_name='payment_instructions')
    op.drop_index('uq_payment_instructions_live_claim', table_name='payment_instructions', postgresql_where=LIVE)
    op.create_index('uq_payment_instructions_live_claim', 'payment_instructions', ['claim_id'], unique=True,
                    postgresql_where=LIVE)
    op.drop_constraint('uq_payment_instructions_identity', 'payment_instructions', type_='unique')
    op.create_unique_constraint('uq_payment_instructions_claim_id', 'payment_instructions', ['claim_id', 'attempt'])
    for column in ('settled_at', 'batch_id', 'adjustment_id', 'kind'):
        op.drop_column('payment_instructions', column)
