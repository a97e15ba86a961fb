"""connected channels of an organization (CAT-7)

Revision ID: 0017
Revises: 0013

One row per (organization, channel): active while connected, `disconnected_at` once
disconnected; a reconnect makes it active again. Counted over the billing organization's
family under the plan's `limits.channels` (SUB-2, SUB-6).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tabkeeper.db.types

revision = '0017'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('connected_channels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('connected_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('disconnected_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_connected_channels_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connected_channels')),
    sa.UniqueConstraint('organization_id', 'channel', name=op.f('uq_connected_channels_organization_id_channel'))
    )


def downgrade() -> None:
    op.drop_table('connected_channels')
