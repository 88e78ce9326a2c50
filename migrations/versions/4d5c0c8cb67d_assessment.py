"""assessment: schemes, period closes, partner assessments, rebate ledger

Revision ID: 4d5c0c8cb67d
Revises: b5d2e8f1a9c3
Create Date: 2026-12-01 14:43:10

A scheme per month; the month's close, at most one (a unique index: of two racing closes one wins); the
partners' assessment rows per version of the close, with their inputs; and the rebate ledger (append-only).
"""
from alembic import op
import sqlalchemy as sa

import app.core.types


# revision identifiers, used by Alembic.
revision = '4d5c0c8cb67d'
down_revision = 'b5d2e8f1a9c3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('assessment_schemes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('weights', sa.JSON(), nullable=False),
    sa.Column('tiers', sa.JSON(), nullable=False),
    sa.Column('base', sa.String(length=16), nullable=False),
    sa.Column('updated_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('updated_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_assessment_schemes_updated_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assessment_schemes')),
    sa.UniqueConstraint('period', name='uq_assessment_schemes_period')
    )
    op.create_table('partner_assessments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('inputs', sa.JSON(), nullable=False),
    sa.Column('parts', sa.JSON(), nullable=False),
    sa.Column('score_x100', sa.Integer(), nullable=False),
    sa.Column('tier_index', sa.Integer(), nullable=False),
    sa.Column('tier_name', sa.String(length=40), nullable=False),
    sa.Column('rebate_bp', sa.Integer(), nullable=False),
    sa.Column('base_fen', sa.BigInteger(), nullable=False),
    sa.Column('rebate_fen', sa.BigInteger(), nullable=False),
    sa.Column('movement', sa.String(length=12), nullable=False),
    sa.Column('previous_tier', sa.String(length=40), nullable=True),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('rebate_fen >= 0', name=op.f('ck_partner_assessments_rebate_not_negative')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_partner_assessments_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_assessments')),
    sa.UniqueConstraint('period', 'partner_id', 'version', name='uq_partner_assessments_version')
    )
    with op.batch_alter_table('partner_assessments', schema=None) as batch_op:
        batch_op.create_index('ix_partner_assessments_partner_id_period', ['partner_id', 'period'], unique=False)

    op.create_table('period_closes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('scheme', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('partners', sa.Integer(), nullable=False),
    sa.Column('rebate_fen', sa.BigInteger(), nullable=False),
    sa.Column('closed_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('closed_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recomputed_at', app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_period_closes_closed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_period_closes')),
    sa.UniqueConstraint('period', name='uq_period_closes_period')
    )
    op.create_table('rebate_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_rebate_entries_created_by_id_users')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_rebate_entries_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rebate_entries')),
    sa.UniqueConstraint('period', 'partner_id', 'version', name='uq_rebate_entries_version')
    )
    with op.batch_alter_table('rebate_entries', schema=None) as batch_op:
        batch_op.create_index('ix_rebate_entries_period_partner_id', ['period', 'partner_id'], unique=False)



def downgrade():
    with op.batch_alter_table('rebate_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_rebate_entries_period_partner_id')

    op.drop_table('rebate_entries')
    op.drop_table('period_closes')
    with op.batch_alter_table('partner_assessments', schema=None) as batch_op:
        batch_op.drop_index('ix_partner_assessments_partner_id_period')

    op.drop_table('partner_assessments')
    op.drop_table('assessment_schemes')
