"""hot sell functions v2, and one head for every history of a3c9e1f04b21

Revision ID: 2303fe3f8ce0
Revises: a3c9e1f04b21, d46526d93632
Create Date: 2026-12-01 09:00:00

Why this revision exists. Main rewrote a3c9e1f04b21 after databases had run it: 6eb9391 put 840769526a57 before
it (it had followed 7d427dcc2220), 9aa0e7e added scan_sell_one to it, fb2a67b and 3b73128 edited its *_v1.sql texts
in place, and 3b73128 put d46526d93632 (scan_events.request_id, on_hand_after and their unique index) before it.
Alembic never runs a revision twice, so a database keeps whatever a3c9e1f04b21 built when it ran, whatever code
came later, and every one of them says only `alembic_version = 'a3c9e1f04b21'`. By the release it ran under:

  ran a3c9e1f04b21 under   sales_inbox  scan_sell_one  scan_sell_many  scan_events.request_id, on_hand_after, index
  8ba69e2                  no           no             8ba69e2's text  no
  6eb9391                  yes          no             6eb9391's text  no
  9aa0e7e                  yes          9aa0e7e's      6eb9391's       no
  fb2a67b                  yes          fb2a67b's      fb2a67b's       no
  3b73128 (to c5949d6)     yes          3b73128's      3b73128's       yes

History put right: a3c9e1f04b21 follows 840769526a57 again, as from 6eb9391 to 3b73128, with its 9aa0e7e text
and the *_v1.sql texts as 9aa0e7e first released them (frozen from here on); d46526d93632 keeps the parent it was
released with, 840769526a57, so the two are branches, and this revision joins them. Every database gets here:

- at a3c9e1f04b21 (any state above): alembic runs d46526d93632, which adds each column and the index only where
  it is missing (a 3b73128 database has them; the others get them), then this revision;
- at d46526d93632 (3b73128 until c5949d6, or this history): alembic runs a3c9e1f04b21 (the v1 functions), then this;
- at 840769526a57 or 7d427dcc2220, or empty: both branches, then this.

This revision then looks at what is really there rather than trusting the version number:
- sales_inbox is created if it is missing (a database at a3c9e1f04b21 from 8ba69e2 never ran 840769526a57);
- on PostgreSQL, scan_sell_one and scan_sell_many are (re)created from app/scans/sql/*_v2.sql whatever text or
  absence is there now: CREATE OR REPLACE, and no released text changed either function's arguments or result, so
  each replaces its old self (same signature) instead of adding an overload. The v2 texts are 3b73128's, unchanged:
  they need the d46526d93632 columns, which every path above has added before this point.
A database from any release thus ends with the schema and functions of a fresh install (tests/test_migrations.py
builds each state from its release's own texts and upgrades it with data). Released files never change: a new
function text is a new *_vN.sql file and a new revision.
"""
from pathlib import Path

from alembic import op
import sqlalchemy as sa

revision = '2303fe3f8ce0'
down_revision = ('a3c9e1f04b21', 'd46526d93632')
branch_labels = None
depends_on = None

SQL = Path(__file__).resolve().parents[2] / "app" / "scans" / "sql"
FILES = ("scan_sell_one_v2.sql", "scan_sell_many_v2.sql")
PREVIOUS = ("scan_sell_one_v1.sql", "scan_sell_many_v1.sql")  # what a3c9e1f04b21 builds


def upgrade():
    bind = op.get_bind()
    if not sa.inspect(bind).has_table('sales_inbox'):
        # As 840769526a57 creates it.
        op.create_table('sales_inbox',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('sku_id', sa.BigInteger(), nullable=False),
        sa.Column('store_id', sa.BigInteger(), nullable=False),
        sa.Column('units', sa.Integer(), nullable=False),
        sa.Column('amount_fen', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_inbox'))
        )
    if bind.dialect.name == "postgresql":
        for name in FILES:
            bind.exec_driver_sql((SQL / name).read_text(encoding="utf-8"))


def downgrade():
    # Back to what a3c9e1f04b21 and d46526d93632 build; sales_inbox belongs to 840769526a57 and stays.
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in PREVIOUS:
            bind.exec_driver_sql((SQL / name).read_text(encoding="utf-8"))
