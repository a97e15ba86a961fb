"""the spend cap (LIM-6) and auto top-up (CRD-6) on the credit balance row

Revision ID: 0022
Revises: 0019

`credit_balances.spend_cap`: the cap in minor units of the platform's currency (null: no
cap); `spend_key` the subscription period the spend counters are for ("" none yet);
`spent_overage` the overage accrued in that period at its price (kept while a cap is set,
worked out again from the usage counters when one is set); `spent_purchases` the credit
purchases and auto top-ups charged in it. `auto_threshold` and `auto_credits` the auto
top-up's settings (null: off); `auto_pending` the key of the one auto top-up in flight.

Columns are added in place on SQLite (`recreate='never'`), as in 0009.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('credit_balances', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('spend_cap', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('spend_key', sa.String(length=100), server_default='', nullable=False))
        batch_op.add_column(sa.Column('spent_overage', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('spent_purchases', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('auto_threshold', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('auto_credits', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('auto_pending', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('credit_balances', schema=None) as batch_op:
        batch_op.drop_column('auto_pending')
        batch_op.drop_column('auto_credits')
        batch_op.drop_column('auto_threshold')
        batch_op.drop_column('spent_purchases')
        batch_op.drop_column('spent_overage')
        batch_op.drop_column('spend_key')
        batch_op.drop_column('spend_cap')
