"""trials that convert and billing anchors (issue 17 items 3 and 4: SUB-15, SUB-16)

Revision ID: 0020
Revises: 0014

`subscriptions.trial_converts`: the subscription is in a plan's own trial, which converts
into the paid plan at its end (SUB-15); false for the platform's free trial (TRI-1) and
every other state. `checkout_sessions.anchor_day`: the billing anchor (a day of the month,
1..31) asked for at checkout, applied when the checkout completes (SUB-16); null: none.

Columns are added in place on SQLite (`recreate='never'`), as in 0009.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscriptions', schema=None, recreate='never') as batch_op:
        batch_op.add_column(
            sa.Column('trial_converts', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table('checkout_sessions', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('anchor_day', sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('checkout_sessions', schema=None) as batch_op:
        batch_op.drop_column('anchor_day')
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('trial_converts')
