"""partner_targets: monthly targets of a partner per metric, versioned

Revision ID: a7e3c9d1f2b4
Revises: c4f1a2b3d5e6
Create Date: 2026-12-01 13:00:00

One live row per partner, month and metric (a partial unique index); a change writes the next version and
supersedes the old row in the same transaction.
"""
from alembic import op
import sqlalchemy as sa

import app.core.types


# revision identifiers, used by Alembic.
revision = 'a7e3c9d1f2b4'
down_revision = 'c4f1a2b3d5e6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('partner_targets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('metric', sa.String(length=24), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('superseded_at', app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('value >= 0', name=op.f('ck_partner_targets_target_value_not_negative')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_partner_targets_target_version_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_partner_targets_created_by_id_users')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_partner_targets_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_targets'))
    )
    with op.batch_alter_table('partner_targets', schema=None) as batch_op:
        batch_op.create_index('ix_partner_targets_period', ['period'], unique=False)
        batch_op.create_index('uq_partner_targets_live', ['partner_id', 'period', 'metric'], unique=True,
                              postgresql_where=sa.text('superseded_at IS NULL'),
                              sqlite_where=sa.text('superseded_at IS NULL'))
        batch_op.create_index('uq_partner_targets_version', ['partner_id', 'period', 'metric', 'version'],
                              unique=True)


def downgrade():
    with op.batch_alter_table('partner_targets', schema=None) as batch_op:
        batch_op.drop_index('uq_partner_targets_version')
        batch_op.drop_index('uq_partner_targets_live')
        batch_op.drop_index('ix_partner_targets_period')
    op.drop_table('partner_targets')
