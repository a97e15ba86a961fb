"""corrections: credit notes and their numbers, refunds, invoices paid out of band (INV-5)

Revision ID: 0010
Revises: 0015

New tables `credit_notes`, `credit_note_lines`, `refunds`, `account_credit_grants` and the sandbox provider's
`sandbox_refunds`; `platforms.last_credit_note_number` (the gapless counter, 0 for every
platform: no credit note existed before) and `invoices.paid_via` (null: every invoice
paid so far was paid by the provider or by account credit). Both columns are added in
place on SQLite (`recreate='never'`): no table is rebuilt.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tabkeeper.db.types

revision = '0010'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('platforms', schema=None, recreate='never') as batch_op:
        batch_op.add_column(
            sa.Column('last_credit_note_number', sa.Integer(), server_default='0', nullable=False)
        )
    with op.batch_alter_table('invoices', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('paid_via', sa.String(length=20), nullable=True))
    op.create_table('credit_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total_minor', sa.Integer(), nullable=False),
    sa.Column('refund_minor', sa.Integer(), nullable=False),
    sa.Column('credited_minor', sa.Integer(), nullable=False),
    sa.Column('applied_minor', sa.Integer(), nullable=False),
    sa.Column('refund_status', sa.String(length=20), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('issued_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_credit_notes_invoice_id_invoices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_credit_notes_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['platform_id'], ['platforms.id'], name=op.f('fk_credit_notes_platform_id_platforms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_notes')),
    sa.UniqueConstraint('platform_id', 'number', name=op.f('uq_credit_notes_platform_id_number'))
    )
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.create_index('ix_credit_notes_invoice_id', ['invoice_id'], unique=False)
        batch_op.create_index('ix_credit_notes_organization_id', ['organization_id'], unique=False)

    op.create_table('credit_note_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('credit_note_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('invoice_line', sa.Integer(), nullable=True),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('amount_minor', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['credit_note_id'], ['credit_notes.id'], name=op.f('fk_credit_note_lines_credit_note_id_credit_notes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_note_lines')),
    sa.UniqueConstraint('credit_note_id', 'position', name=op.f('uq_credit_note_lines_credit_note_id_position'))
    )
    op.create_table('refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('credit_note_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('amount_minor', sa.Integer(), nullable=False),
    sa.Column('charge_reference', sa.String(length=128), nullable=False),
    sa.Column('provider_reference', sa.String(length=128), nullable=True),
    sa.Column('failure_code', sa.String(length=64), nullable=True),
    sa.Column('failure_message', sa.String(length=300), nullable=True),
    sa.Column('attempted_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['credit_note_id'], ['credit_notes.id'], name=op.f('fk_refunds_credit_note_id_credit_notes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_refunds_invoice_id_invoices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('credit_note_id', name=op.f('uq_refunds_credit_note_id')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_refunds_idempotency_key'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_invoice_id'), ['invoice_id'], unique=False)

    op.create_table('sandbox_refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('refund_id', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('charge_id', sa.String(length=64), nullable=False),
    sa.Column('amount_minor', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['charge_id'], ['sandbox_charges.charge_id'], name=op.f('fk_sandbox_refunds_charge_id_sandbox_charges')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_refunds')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_sandbox_refunds_idempotency_key')),
    sa.UniqueConstraint('refund_id', name=op.f('uq_sandbox_refunds_refund_id'))
    )
    with op.batch_alter_table('sandbox_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_refunds_charge_id'), ['charge_id'], unique=False)


    op.create_table('account_credit_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('granted_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_account_credit_grants_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_credit_grants'))
    )
    with op.batch_alter_table('account_credit_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_credit_grants_organization_id'), ['organization_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('account_credit_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_credit_grants_organization_id'))
    op.drop_table('account_credit_grants')
    with op.batch_alter_table('sandbox_refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_refunds_charge_id'))
    op.drop_table('sandbox_refunds')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_invoice_id'))
    op.drop_table('refunds')
    op.drop_table('credit_note_lines')
    with op.batch_alter_table('credit_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_notes_organization_id')
        batch_op.drop_index('ix_credit_notes_invoice_id')
    op.drop_table('credit_notes')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('paid_via')
    with op.batch_alter_table('platforms', schema=None) as batch_op:
        batch_op.drop_column('last_credit_note_number')
