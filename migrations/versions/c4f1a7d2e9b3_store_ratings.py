"""store_ratings: a store owner's monthly rating of the distributor serving the store

Revision ID: c4f1a7d2e9b3
Revises: 308174f37bd1
Create Date: 2026-12-01 12:00:00.000000

One rating per store and business month (unique), idempotent by the writer's request_id (unique), score 1..5.
"""
from alembic import op
import sqlalchemy as sa

import app.core.types


# revision identifiers, used by Alembic.
revision = 'c4f1a7d2e9b3'
down_revision = '308174f37bd1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('store_ratings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('distributor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('score', sa.SmallInteger(), nullable=False),
    sa.Column('comment', sa.String(length=500), nullable=True),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('score BETWEEN 1 AND 5', name=op.f('ck_store_ratings_score_1_to_5')),
    sa.ForeignKeyConstraint(['distributor_id'], ['partners.id'], name=op.f('fk_store_ratings_distributor_id_partners')),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_store_ratings_store_id_stores')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_store_ratings_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_store_ratings')),
    sa.UniqueConstraint('store_id', 'period', name='uq_store_ratings_store_id_period'),
    sa.UniqueConstraint('user_id', 'request_id', name='uq_store_ratings_user_id_request_id')
    )
    with op.batch_alter_table('store_ratings', schema=None) as batch_op:
        batch_op.create_index('ix_store_ratings_distributor_id_period', ['distributor_id', 'period'], unique=False)
        batch_op.create_index('ix_store_ratings_period', ['period'], unique=False)


def downgrade():
    with op.batch_alter_table('store_ratings', schema=None) as batch_op:
        batch_op.drop_index('ix_store_ratings_period')
        batch_op.drop_index('ix_store_ratings_distributor_id_period')

    op.drop_table('store_ratings')
