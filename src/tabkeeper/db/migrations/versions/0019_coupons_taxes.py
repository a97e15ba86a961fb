"""billing details and coupon redemptions (INV-6, INV-7)

Revision ID: 0019
Revises: 0021

`billing_details`: an organization's legal name, address, country and tax ID (one row
each). `coupon_redemptions`: coupons redeemed by organizations, with the periods they
covered. Invoice lines of kind `discount` and `tax` need no schema change.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tabkeeper.db.types

revision = '0019'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('billing_details',
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('legal_name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('tax_id', sa.String(length=40), nullable=True),
    sa.Column('updated_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_billing_details_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('organization_id', name=op.f('pk_billing_details'))
    )
    op.create_table('coupon_redemptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform_id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('coupon_code', sa.String(length=64), nullable=False),
    sa.Column('catalog_version_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('redeemed_at', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('redeemed_by', sa.String(length=64), nullable=True),
    sa.Column('periods_used', sa.Integer(), nullable=False),
    sa.Column('covered_start', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('covered_end', tabkeeper.db.types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['catalog_version_id'], ['catalog_versions.id'], name=op.f('fk_coupon_redemptions_catalog_version_id_catalog_versions')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_coupon_redemptions_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['platform_id'], ['platforms.id'], name=op.f('fk_coupon_redemptions_platform_id_platforms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon_redemptions'))
    )
    op.create_index('ix_coupon_redemptions_platform_coupon', 'coupon_redemptions', ['platform_id', 'coupon_code'], unique=False)
    op.create_index(op.f('ix_coupon_redemptions_organization_id'), 'coupon_redemptions', ['organization_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_coupon_redemptions_organization_id'), table_name='coupon_redemptions')
    op.drop_index('ix_coupon_redemptions_platform_coupon', table_name='coupon_redemptions')
    op.drop_table('coupon_redemptions')
    op.drop_table('billing_details')
