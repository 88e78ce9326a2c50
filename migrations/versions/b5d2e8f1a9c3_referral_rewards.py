"""referral rewards: policy, consumer verifications, links, bindings, rewards, accounts, ledger, daily totals,
payouts

Revision ID: b5d2e8f1a9c3
Revises: e3b7c1d9a4f6
Create Date: 2026-12-01 15:00:00

New tables only (nothing existing is altered): the downgrade drops them in reverse order.
"""
from alembic import op
import sqlalchemy as sa

import app.core.types


# revision identifiers, used by Alembic.
revision = 'b5d2e8f1a9c3'
down_revision = 'e3b7c1d9a4f6'
branch_labels = None
depends_on = None


def _id():
    return sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('referral_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('binding_days', sa.Integer(), nullable=False),
    sa.Column('purchase_window_days', sa.Integer(), nullable=False),
    sa.Column('reward_fen', sa.Integer(), nullable=False),
    sa.Column('freeze_days', sa.Integer(), nullable=False),
    sa.Column('daily_cap_fen', sa.Integer(), nullable=False),
    sa.Column('levels', sa.SmallInteger(), nullable=False),
    sa.Column('level2_reward_fen', sa.Integer(), nullable=False),
    sa.Column('updated_by_id', _id(), nullable=True),
    sa.Column('updated_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_referral_policies_updated_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_policies'))
    )
    op.create_table('consumer_verifications',
    sa.Column('id', _id(), nullable=False),
    sa.Column('user_id', _id(), nullable=False),
    sa.Column('code_id', _id(), nullable=False),
    sa.Column('verified_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['code_id'], ['codes.id'], name=op.f('fk_consumer_verifications_code_id_codes')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_consumer_verifications_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consumer_verifications')),
    sa.UniqueConstraint('user_id', 'code_id', name='uq_consumer_verifications_user_id_code_id')
    )
    op.create_index('ix_consumer_verifications_code_id', 'consumer_verifications', ['code_id'], unique=False)
    op.create_table('referral_links',
    sa.Column('id', _id(), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('user_id', _id(), nullable=False),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_referral_links_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_links')),
    sa.UniqueConstraint('token', name=op.f('uq_referral_links_token')),
    sa.UniqueConstraint('user_id', name=op.f('uq_referral_links_user_id'))
    )
    op.create_table('referral_bindings',
    sa.Column('id', _id(), nullable=False),
    sa.Column('consumer_id', _id(), nullable=False),
    sa.Column('referrer_id', _id(), nullable=False),
    sa.Column('link_id', _id(), nullable=False),
    sa.Column('bound_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('consumer_id <> referrer_id', name=op.f('ck_referral_bindings_not_self')),
    sa.ForeignKeyConstraint(['consumer_id'], ['users.id'], name=op.f('fk_referral_bindings_consumer_id_users')),
    sa.ForeignKeyConstraint(['link_id'], ['referral_links.id'],
                            name=op.f('fk_referral_bindings_link_id_referral_links')),
    sa.ForeignKeyConstraint(['referrer_id'], ['users.id'], name=op.f('fk_referral_bindings_referrer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_bindings')),
    sa.UniqueConstraint('consumer_id', name=op.f('uq_referral_bindings_consumer_id'))
    )
    op.create_index('ix_referral_bindings_referrer_id', 'referral_bindings', ['referrer_id'], unique=False)
    op.create_table('referral_rewards',
    sa.Column('id', _id(), nullable=False),
    sa.Column('code_id', _id(), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('referrer_id', _id(), nullable=False),
    sa.Column('consumer_id', _id(), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('cancel_reason', sa.String(length=32), nullable=True),
    sa.Column('frozen_until', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_fen >= 0', name=op.f('ck_referral_rewards_amount_not_negative')),
    sa.CheckConstraint('level IN (1, 2)', name=op.f('ck_referral_rewards_level_1_or_2')),
    sa.ForeignKeyConstraint(['code_id'], ['codes.id'], name=op.f('fk_referral_rewards_code_id_codes')),
    sa.ForeignKeyConstraint(['consumer_id'], ['users.id'], name=op.f('fk_referral_rewards_consumer_id_users')),
    sa.ForeignKeyConstraint(['referrer_id'], ['users.id'], name=op.f('fk_referral_rewards_referrer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_rewards')),
    sa.UniqueConstraint('code_id', 'level', name='uq_referral_rewards_code_id_level')
    )
    op.create_index('ix_referral_rewards_referrer_id', 'referral_rewards', ['referrer_id'], unique=False)
    op.create_index('ix_referral_rewards_status_frozen_until', 'referral_rewards', ['status', 'frozen_until'],
                    unique=False)
    op.create_table('referral_accounts',
    sa.Column('user_id', _id(), nullable=False),
    sa.Column('pending_fen', sa.BigInteger(), nullable=False),
    sa.Column('available_fen', sa.BigInteger(), nullable=False),
    sa.Column('paid_fen', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('pending_fen >= 0 AND available_fen >= 0 AND paid_fen >= 0',
                       name=op.f('ck_referral_accounts_not_negative')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_referral_accounts_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_referral_accounts'))
    )
    op.create_table('referral_payouts',
    sa.Column('id', _id(), nullable=False),
    sa.Column('user_id', _id(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('recorded_by_id', _id(), nullable=False),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen > 0', name=op.f('ck_referral_payouts_amount_positive')),
    sa.CheckConstraint("method IN ('offline', 'wechat_transfer')", name=op.f('ck_referral_payouts_method_known')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'],
                            name=op.f('fk_referral_payouts_recorded_by_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_referral_payouts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_payouts')),
    sa.UniqueConstraint('method', 'reference', name='uq_referral_payouts_method_reference')
    )
    op.create_index('ix_referral_payouts_user_id', 'referral_payouts', ['user_id'], unique=False)
    op.create_table('referral_ledger',
    sa.Column('id', _id(), nullable=False),
    sa.Column('user_id', _id(), nullable=False),
    sa.Column('reward_id', _id(), nullable=True),
    sa.Column('payout_id', _id(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('pending_delta_fen', sa.BigInteger(), nullable=False),
    sa.Column('available_delta_fen', sa.BigInteger(), nullable=False),
    sa.Column('unrecovered_fen', sa.BigInteger(), nullable=False),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['payout_id'], ['referral_payouts.id'],
                            name=op.f('fk_referral_ledger_payout_id_referral_payouts')),
    sa.ForeignKeyConstraint(['reward_id'], ['referral_rewards.id'],
                            name=op.f('fk_referral_ledger_reward_id_referral_rewards')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_referral_ledger_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_ledger'))
    )
    op.create_index('ix_referral_ledger_reward_id', 'referral_ledger', ['reward_id'], unique=False)
    op.create_index('ix_referral_ledger_user_id', 'referral_ledger', ['user_id'], unique=False)
    op.create_table('referral_daily_totals',
    sa.Column('referrer_id', _id(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('earned_fen', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['referrer_id'], ['users.id'], name=op.f('fk_referral_daily_totals_referrer_id_users')),
    sa.PrimaryKeyConstraint('referrer_id', 'day', name=op.f('pk_referral_daily_totals'))
    )


def downgrade():
    op.drop_table('referral_daily_totals')
    op.drop_index('ix_referral_ledger_user_id', table_name='referral_ledger')
    op.drop_index('ix_referral_ledger_reward_id', table_name='referral_ledger')
    op.drop_table('referral_ledger')
    op.drop_index('ix_referral_payouts_user_id', table_name='referral_payouts')
    op.drop_table('referral_payouts')
    op.drop_table('referral_accounts')
    op.drop_index('ix_referral_rewards_status_frozen_until', table_name='referral_rewards')
    op.drop_index('ix_referral_rewards_referrer_id', table_name='referral_rewards')
    op.drop_table('referral_rewards')
    op.drop_index('ix_referral_bindings_referrer_id', table_name='referral_bindings')
    op.drop_table('referral_bindings')
    op.drop_table('referral_links')
    op.drop_index('ix_consumer_verifications_code_id', table_name='consumer_verifications')
    op.drop_table('consumer_verifications')
    op.drop_table('referral_policies')
