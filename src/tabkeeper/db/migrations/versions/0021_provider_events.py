"""provider events (PAY-3) and Stripe customers (PAY-4)

Revision ID: 0021
Revises: 0014

`provider_events`: each payment provider callback once, UNIQUE (provider, event_id),
written in the transaction of its effect. `stripe_customers`: the Stripe customer of
each tabkeeper customer, UNIQUE both ways. `invoices.disputed_at`: when the provider
reported a dispute of the invoice's payment (added in place on SQLite, as in 0014).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tabkeeper.db.types

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('provider_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('object_id', sa.String(length=255), nullable=True),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.Column('created_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('received_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_events')),
    sa.UniqueConstraint('provider', 'event_id', name=op.f('uq_provider_events_provider_event_id'))
    )
    op.create_table('stripe_customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer', sa.String(length=200), nullable=False),
    sa.Column('stripe_id', sa.String(length=255), nullable=False),
    sa.Column('created_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_customers')),
    sa.UniqueConstraint('customer', name=op.f('uq_stripe_customers_customer')),
    sa.UniqueConstraint('stripe_id', name=op.f('uq_stripe_customers_stripe_id'))
    )
    with op.batch_alter_table('invoices', schema=None, recreate='never') as batch_op:
        batch_op.add_column(
            sa.Column('disputed_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('disputed_at')
    op.drop_table('stripe_customers')
    op.drop_table('provider_events')
