"""bounded conversation state: late messages flagged, messages found by conversation

Revision ID: 0009
Revises: 0007

A conversation row keeps only its recent windows and a lateness floor (its JSON `state`
changes shape; rows in the earlier shape are read as they are and rewritten in the new
one at their next message, so no data is converted here). Events get `late` (a message
left out of billable sessions), and an index by (organization, conversation, time) for
the messages a conversation re-covers from.

On SQLite the column is added in place (ALTER TABLE ... ADD COLUMN, `recreate='never'`):
its default is a SQL expression (false()), for which Alembic's batch mode would otherwise
rebuild the whole table, copying every event, and write the rebuilt table's constraints in
the iteration order of a set of constraint objects (by their addresses in memory), so that
two databases migrated alike could differ in the text of their `CREATE TABLE events`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None, recreate='never') as batch_op:
        batch_op.add_column(
            sa.Column('late', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index(
            'ix_events_organization_conversation_time',
            ['organization_id', 'conversation', 'time'],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_organization_conversation_time')
        batch_op.drop_column('late')
