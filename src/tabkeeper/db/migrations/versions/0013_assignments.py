"""sales-led plans assigned by the platform (CAT-9): a negotiated price and the way of
collecting kept on the subscription; demo requests show as handled

Revision ID: 0013
Revises: 0011 (rechained after main's 0015 and 0010 when main was merged in)

`subscriptions.price_minor` is the plan price per interval the platform agreed for the plan
`subscriptions.price_plan` (NULL, or another plan: the catalog price of the subscription's
price version, CAT-6); `subscriptions.collection` is
`card` (invoices are charged to the card on file) or `invoice` (invoices stay open until
"mark paid"). A demo request is `pending` until the organization is assigned the plan it
asked for, then `handled` with `handled_at`.

Columns are added in place on SQLite (`recreate='never'`), as in 0009.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tabkeeper.db.types

revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscriptions', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('price_minor', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('price_plan', sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column('collection', sa.String(length=20), server_default='card', nullable=False)
        )
    with op.batch_alter_table('demo_requests', schema=None, recreate='never') as batch_op:
        batch_op.add_column(
            sa.Column('status', sa.String(length=20), server_default='pending', nullable=False)
        )
        batch_op.add_column(sa.Column('handled_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('demo_requests', schema=None) as batch_op:
        batch_op.drop_column('handled_at')
        batch_op.drop_column('status')
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('collection')
        batch_op.drop_column('price_plan')
        batch_op.drop_column('price_minor')
