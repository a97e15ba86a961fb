"""why a subscription ended: `ended_reason` (SUB-11: canceled, unpaid, trial_ended)

Revision ID: 0015
Revises: 0009

Rows that ended before this revision keep a null reason.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscriptions', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('ended_reason', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('ended_reason')
