"""sku groups, target templates, and targets limited to a SKU group

Revision ID: 5d2b8e1f0a37
Revises: a7e3c9d1f2b4
Create Date: 2026-12-01 15:30:00

A target may count one SKU group's members only (`partner_targets.sku_group_id`). The live and version unique
indexes become two pairs: one for targets of all SKUs (no group; NULL never collides with itself in a unique index)
and one for targets of a group. A yearly target is split over the months by a template of twelve shares.
"""
from alembic import op
import sqlalchemy as sa

import app.core.types


# revision identifiers, used by Alembic.
revision = '5d2b8e1f0a37'
down_revision = 'a7e3c9d1f2b4'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('sku_groups',
    sa.Column('id', _ID, nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sku_groups')),
    sa.UniqueConstraint('code', name=op.f('uq_sku_groups_code'))
    )
    op.create_table('sku_group_members',
    sa.Column('group_id', _ID, nullable=False),
    sa.Column('sku_id', _ID, nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['sku_groups.id'], name=op.f('fk_sku_group_members_group_id_sku_groups'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], name=op.f('fk_sku_group_members_sku_id_skus')),
    sa.PrimaryKeyConstraint('group_id', 'sku_id', name=op.f('pk_sku_group_members'))
    )
    op.create_table('target_templates',
    sa.Column('id', _ID, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('shares_bp', sa.JSON(), nullable=False),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_target_templates')),
    sa.UniqueConstraint('name', name=op.f('uq_target_templates_name'))
    )
    # The old pair goes first, so SQLite's rebuild of the table (nothing refers to it) cannot carry a partial
    # index without its WHERE; the new ones are made after it.
    op.drop_index('uq_partner_targets_live', table_name='partner_targets')
    op.drop_index('uq_partner_targets_version', table_name='partner_targets')
    with op.batch_alter_table('partner_targets') as batch_op:
        batch_op.add_column(sa.Column('sku_group_id', _ID, nullable=True))
        batch_op.create_foreign_key(op.f('fk_partner_targets_sku_group_id_sku_groups'), 'sku_groups',
                                    ['sku_group_id'], ['id'])
    op.create_index('uq_partner_targets_live_all', 'partner_targets', ['partner_id', 'period', 'metric'], unique=True,
                    postgresql_where=sa.text('superseded_at IS NULL AND sku_group_id IS NULL'),
                    sqlite_where=sa.text('superseded_at IS NULL AND sku_group_id IS NULL'))
    op.create_index('uq_partner_targets_version_all', 'partner_targets', ['partner_id', 'period', 'metric', 'version'],
                    unique=True, postgresql_where=sa.text('sku_group_id IS NULL'),
                    sqlite_where=sa.text('sku_group_id IS NULL'))
    op.create_index('uq_partner_targets_live_group', 'partner_targets',
                    ['partner_id', 'period', 'metric', 'sku_group_id'], unique=True,
                    postgresql_where=sa.text('superseded_at IS NULL'), sqlite_where=sa.text('superseded_at IS NULL'))
    op.create_index('uq_partner_targets_version_group', 'partner_targets',
                    ['partner_id', 'period', 'metric', 'sku_group_id', 'version'], unique=True)


def downgrade():
    # Targets of a SKU group have no place in the older schema: they go, the targets of all SKUs stay.
    op.execute("DELETE FROM partner_targets WHERE sku_group_id IS NOT NULL")
    op.drop_index('uq_partner_targets_version_group', table_name='partner_targets')
    op.drop_index('uq_partner_targets_live_group', table_name='partner_targets')
    op.drop_index('uq_partner_targets_version_all', table_name='partner_targets')
    op.drop_index('uq_partner_targets_live_all', table_name='partner_targets')
    # SQLite cannot drop a column that has a foreign key: the table is rebuilt (nothing refers to it), and its
    # partial unique index is made after, so the rebuild cannot lose its WHERE.
    with op.batch_alter_table('partner_targets') as batch_op:
        batch_op.drop_column('sku_group_id')
    op.create_index('uq_partner_targets_live', 'partner_targets', ['partner_id', 'period', 'metric'], unique=True,
                    postgresql_where=sa.text('superseded_at IS NULL'), sqlite_where=sa.text('superseded_at IS NULL'))
    op.create_index('uq_partner_targets_version', 'partner_targets', ['partner_id', 'period', 'metric', 'version'],
                    unique=True)
    op.drop_table('target_templates')
    op.drop_table('sku_group_members')
    op.drop_table('sku_groups')
