"""diversion alerts are handled (status, who, when, an event history); a phone's checks of a unit are counted once

Revision ID: c4a7e2d91b35
Revises: c4f1a7d2e9b3
Create Date: 2026-12-01 11:40:00

`diversion_alerts` gains `status` (open | investigating | confirmed | dismissed, every existing alert open),
`handled_by_id` and `handled_at`; `diversion_alert_events` keeps every status change with its note and every
note added on its own. `verify_viewers` remembers which phone (the hash of a first-party cookie) last had a
check of a unit counted, so a reload by the same phone is not another check. `consumer_settings` (one row) holds
HQ's brand name and service contact for the consumer page.
"""
from alembic import op
import sqlalchemy as sa

import app.core.types


# revision identifiers, used by Alembic.
revision = 'c4a7e2d91b35'
down_revision = 'c4f1a7d2e9b3'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    with op.batch_alter_table('diversion_alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), server_default='open', nullable=False))
        batch_op.add_column(sa.Column('handled_by_id', _ID, nullable=True))
        batch_op.add_column(sa.Column('handled_at', app.core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_diversion_alerts_handled_by_id_users'), 'users',
                                    ['handled_by_id'], ['id'])
        batch_op.create_index('ix_diversion_alerts_status_id', ['status', 'id'], unique=False)

    op.create_table('diversion_alert_events',
    sa.Column('id', _ID, nullable=False),
    sa.Column('alert_id', _ID, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=True),
    sa.Column('note', sa.String(length=1000), nullable=False),
    sa.Column('user_id', _ID, nullable=True),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['diversion_alerts.id'],
                            name=op.f('fk_diversion_alert_events_alert_id_diversion_alerts')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_diversion_alert_events_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_diversion_alert_events'))
    )
    with op.batch_alter_table('diversion_alert_events', schema=None) as batch_op:
        batch_op.create_index('ix_diversion_alert_events_alert_id_id', ['alert_id', 'id'], unique=False)

    op.create_table('verify_viewers',
    sa.Column('code_id', _ID, nullable=False),
    sa.Column('viewer', sa.String(length=64), nullable=False),
    sa.Column('counted_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['code_id'], ['codes.id'], name=op.f('fk_verify_viewers_code_id_codes')),
    sa.PrimaryKeyConstraint('code_id', 'viewer', name=op.f('pk_verify_viewers'))
    )
    op.create_table('consumer_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('brand_name', sa.String(length=64), nullable=False),
    sa.Column('service_contact', sa.String(length=200), nullable=False),
    sa.Column('updated_by_id', _ID, nullable=True),
    sa.Column('updated_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_consumer_settings_updated_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consumer_settings'))
    )


def downgrade():
    op.drop_table('consumer_settings')
    op.drop_table('verify_viewers')
    with op.batch_alter_table('diversion_alert_events', schema=None) as batch_op:
        batch_op.drop_index('ix_diversion_alert_events_alert_id_id')
    op.drop_table('diversion_alert_events')
    with op.batch_alter_table('diversion_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_diversion_alerts_status_id')
        batch_op.drop_constraint(batch_op.f('fk_diversion_alerts_handled_by_id_users'), type_='foreignkey')
        batch_op.drop_column('handled_at')
        batch_op.drop_column('handled_by_id')
        batch_op.drop_column('status')
