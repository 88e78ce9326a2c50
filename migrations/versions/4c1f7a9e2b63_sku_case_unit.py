"""skus.case_unit: the shipping case (箱) beside the sellable unit (提, 瓶, 袋)

Revision ID: 4c1f7a9e2b63
Revises: c4a7e2d91b35
Create Date: 2026-12-01 11:30:00.000000

A SKU's `unit` is what a code, a scan and an order line count; `case_unit` names the case holding `case_pack`
of them, so a sentence reads "每箱 6 提". Every existing SKU is packed in 箱 (the server default fills them in).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4c1f7a9e2b63'
down_revision = 'c4a7e2d91b35'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('skus', schema=None) as batch_op:
        batch_op.add_column(sa.Column('case_unit', sa.String(length=16), server_default='箱', nullable=False))


def downgrade():
    # A plain column: ALTER TABLE DROP COLUMN on either engine (SQLite 3.35+), so `skus`, which many tables point
    # at, is not rebuilt (a rebuild with rows in place fails SQLite's foreign key check).
    op.drop_column('skus', 'case_unit')
