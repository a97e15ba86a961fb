"""credit holds (CRD-5), the shortfall a settle left unpaid, and the low-balance alert
(CRD-7)

Revision ID: 0016
Revises: 0013

`credit_holds`: one row per hold, `held` until it is settled, released or expired; `parts`
are the grants its credits were drawn from. `credit_balances.owed` is what settles above
the balance left unpaid (repaid first by the next top-up); `credit_balances.low_threshold`
the balance below which `credits.low` is told; `credit_balances.held` the credits open
holds reserve (shown apart; the check reads it with the balance). `credit_entries.shortfall` says, on the use
entry of a settle, how many credits the balance could not cover.

Columns are added in place on SQLite (`recreate='never'`), as in 0009.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tabkeeper.db.types

revision = '0016'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credit_holds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('used_by_id', sa.Integer(), nullable=False),
    sa.Column('feature', sa.String(length=64), nullable=False),
    sa.Column('agent', sa.String(length=64), nullable=True),
    sa.Column('credits', sa.BigInteger(), nullable=False),
    sa.Column('parts', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('created_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('settled_credits', sa.BigInteger(), nullable=True),
    sa.Column('shortfall', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_credit_holds_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_holds'))
    )
    op.create_index('ix_credit_holds_organization_id_state', 'credit_holds', ['organization_id', 'state'], unique=False)
    with op.batch_alter_table('credit_balances', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('owed', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('low_threshold', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('held', sa.BigInteger(), server_default='0', nullable=False))
    with op.batch_alter_table('credit_entries', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('shortfall', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('credit_entries', schema=None) as batch_op:
        batch_op.drop_column('shortfall')
    with op.batch_alter_table('credit_balances', schema=None) as batch_op:
        batch_op.drop_column('held')
        batch_op.drop_column('low_threshold')
        batch_op.drop_column('owed')
    op.drop_index('ix_credit_holds_organization_id_state', table_name='credit_holds')
    op.drop_table('credit_holds')
