"""held places of answered-only sessions (LIM-7)

Revision ID: 0011
Revises: 0010

A conversation whose latest billable window is still unanswered, on an answered-only
plan, records that window's start (`held_since`): the window holds a place under the
session limit until it closes (start + 24 h) or the end user replies (then it is cleared
and the window is counted as answered). The index finds a billing organization's held
places of the current period in one range scan. Added in place on SQLite (a nullable
column with no default, `recreate='never'`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tabkeeper.db.types import UtcDateTime

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('held_since', UtcDateTime(), nullable=True))
        batch_op.create_index(
            'ix_conversations_billing_organization_held',
            ['billing_organization_id', 'held_since'],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_billing_organization_held')
        batch_op.drop_column('held_since')
