"""registration_events.request_id: a retried extend or release of a registration happens once

Revision ID: e7b20c5d4a19
Revises: 4c1f7a9e2b63
Create Date: 2026-12-01 12:30:00

The phone names its request on an extend or a release; the audit row keeps it, unique per registration (where
given), so the repeat finds the first one's row and changes nothing.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e7b20c5d4a19'
down_revision = '4c1f7a9e2b63'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('registration_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))
        batch_op.create_index('uq_registration_events_registration_id_request_id', ['registration_id', 'request_id'],
                              unique=True, postgresql_where=sa.text('request_id IS NOT NULL'),
                              sqlite_where=sa.text('request_id IS NOT NULL'))


def downgrade():
    with op.batch_alter_table('registration_events', schema=None) as batch_op:
        batch_op.drop_index('uq_registration_events_registration_id_request_id',
                            postgresql_where=sa.text('request_id IS NOT NULL'),
                            sqlite_where=sa.text('request_id IS NOT NULL'))
        batch_op.drop_column('request_id')
