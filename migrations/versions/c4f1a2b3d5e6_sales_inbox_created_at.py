"""sales_inbox.created_at: when each unfolded sale was written, for the rollups' fold lag

Revision ID: c4f1a2b3d5e6
Revises: e7b20c5d4a19
Create Date: 2026-12-01 11:40:00

The column is filled by the database (`CURRENT_TIMESTAMP`), so the released hot-path SQL functions, which name
the inbox's other columns only, fill it too. Rows already in the inbox get the time of the upgrade. SQLite cannot
add a column whose default is not a constant, so there its table is rebuilt (batch mode, always).
"""
from alembic import op
import sqlalchemy as sa

import app.core.types


# revision identifiers, used by Alembic.
revision = 'c4f1a2b3d5e6'
down_revision = 'e7b20c5d4a19'
branch_labels = None
depends_on = None


def _column():
    return sa.Column('created_at', app.core.types.UTCDateTime(timezone=True),
                     server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False)


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        with op.batch_alter_table('sales_inbox', schema=None, recreate='always') as batch_op:
            batch_op.add_column(_column())
    else:
        # A default that is not volatile: PostgreSQL adds the column without rewriting the table.
        op.add_column('sales_inbox', _column())


def downgrade():
    with op.batch_alter_table('sales_inbox', schema=None) as batch_op:
        batch_op.drop_column('created_at')
