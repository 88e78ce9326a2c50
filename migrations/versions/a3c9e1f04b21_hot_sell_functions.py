"""scan_sell_one, scan_sell_many: the hot sell path's SQL functions (PostgreSQL only)

Revision ID: a3c9e1f04b21
Revises: 840769526a57
Create Date: 2026-11-30 21:00:00

The functions' texts live in app/scans/sql/*_v1.sql; a released version file never changes (a change is a new
version file and a new migration), so this migration always builds what it built.
"""
from pathlib import Path

from alembic import op

revision = 'a3c9e1f04b21'
down_revision = '840769526a57'
branch_labels = None
depends_on = None

SQL = Path(__file__).resolve().parents[2] / "app" / "scans" / "sql"
FILES = ("scan_sell_one_v1.sql", "scan_sell_many_v1.sql")
SIGNATURES = (
    "scan_sell_one(bigint, varchar, varchar, varchar, bigint, timestamptz, float8, float8, timestamptz, text, text,"
    " text, text)",
    "scan_sell_many(int[], bigint[], varchar[], varchar[], varchar[], bigint[], timestamptz[], float8[], float8[],"
    " timestamptz, text, text, text, text)",
)


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in FILES:
            bind.exec_driver_sql((SQL / name).read_text(encoding="utf-8"))


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for signature in SIGNATURES:
            bind.exec_driver_sql(f"DROP FUNCTION IF EXISTS {signature}")
