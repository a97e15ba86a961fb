"""portal sessions end with the membership and at logout (ACL-3): `members.sessions`

Revision ID: 0014
Revises: 0017 (written on 0013; rechained onto main's 0017 when main was merged in)

A portal session token carries the member's `sessions` number of when it was made;
removing the member, re-adding them and logging out of the billing tab add one to it, so
every token made before is refused.

Columns are added in place on SQLite (`recreate='never'`), as in 0009.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('members', schema=None, recreate='never') as batch_op:
        batch_op.add_column(
            sa.Column('sessions', sa.Integer(), server_default='0', nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('sessions')
