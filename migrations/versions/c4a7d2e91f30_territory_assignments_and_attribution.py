"""territory assignments (kind, validity, ending) and attribution on orders, sells and commission rows

Revision ID: c4a7d2e91f30
Revises: 82e6202037b6
Create Date: 2026-12-01 11:22:09.223422

`territories` become assignments (CHANNEL.md §1): `kind` exclusive | shared, `valid_from` / `valid_to` (open when
empty), who ended one, when and why, who made it and when. The unique (partner, region, industry) goes: a partner
may hold a region again after an assignment ended; overlaps are refused by `app.channel.territories`. Existing rows
become shared assignments valid from their partner's creation (the demo's territories were never exclusive).

Attribution written when a fact happens: `orders.bringing_agent_id` and `routed_agent_id`, `commission_entries.
agent_id`, `scan_events.partner_id` and `agent_id` (a sell's distributor and its parent agent). Existing rows are
back-filled from today's tree: an order's partners' parent agents, a commission row's partner's parent agent, a
sell's store's distributor and that distributor's parent agent (an agent: none when it hangs under HQ).

On PostgreSQL the hot sell path's functions are replaced by app/scans/sql/*_v3.sql, which write the sell's
attribution; downgrading puts the *_v2.sql texts back.
"""
from pathlib import Path

from alembic import op
import sqlalchemy as sa

import app.core.types


# revision identifiers, used by Alembic.
revision = 'c4a7d2e91f30'
down_revision = '82e6202037b6'
branch_labels = None
depends_on = None

SQL = Path(__file__).resolve().parents[2] / "app" / "scans" / "sql"
FILES = ("scan_sell_one_v3.sql", "scan_sell_many_v3.sql")
PREVIOUS = ("scan_sell_one_v2.sql", "scan_sell_many_v2.sql")  # what 2303fe3f8ce0 builds

_AGENT_OF = ("(SELECT a.id FROM partners p JOIN partners a ON a.id = p.parent_id"
             " WHERE p.id = {partner} AND a.kind = 'agent')")


def upgrade():
    # Plain columns (partner ids, no foreign key): adding them is an ALTER TABLE ADD COLUMN on SQLite too, never a
    # rebuild of orders under the rows of other tables that point at it.
    with op.batch_alter_table('commission_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agent_id', sa.BigInteger(), nullable=True))

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bringing_agent_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('routed_agent_id', sa.BigInteger(), nullable=True))

    with op.batch_alter_table('scan_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('partner_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('agent_id', sa.BigInteger(), nullable=True))

    with op.batch_alter_table('territories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='shared'))
        batch_op.add_column(sa.Column('valid_from', app.core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('valid_to', app.core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('ended_at', app.core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('ended_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('end_reason', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_territories_partner_id_region_code_industry'), type_='unique')
        batch_op.create_index('ix_territories_region_code_valid_from', ['region_code', 'valid_from'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_territories_created_by_id_users'), 'users', ['created_by_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_territories_ended_by_id_users'), 'users', ['ended_by_id'], ['id'])

    # Back-fill: existing territories are shared from their partner's creation; attribution from today's tree.
    op.execute("UPDATE territories SET valid_from = (SELECT p.created_at FROM partners p"
               " WHERE p.id = territories.partner_id), created_at = (SELECT p.created_at FROM partners p"
               " WHERE p.id = territories.partner_id)")
    op.execute("UPDATE orders SET bringing_agent_id = " + _AGENT_OF.format(partner="orders.bringing_partner_id")
               + ", routed_agent_id = " + _AGENT_OF.format(partner="orders.routed_partner_id"))
    op.execute("UPDATE commission_entries SET agent_id = "
               + _AGENT_OF.format(partner="commission_entries.partner_id"))
    op.execute("UPDATE scan_events SET partner_id = (SELECT s.distributor_id FROM stores s"
               " WHERE s.id = scan_events.store_id), agent_id = (SELECT a.id FROM stores s"
               " JOIN partners p ON p.id = s.distributor_id JOIN partners a ON a.id = p.parent_id"
               " WHERE s.id = scan_events.store_id AND a.kind = 'agent')"
               " WHERE action = 'sell' AND store_id IS NOT NULL")

    with op.batch_alter_table('territories', schema=None) as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=16), existing_nullable=False,
                              server_default=None)
        batch_op.alter_column('valid_from', existing_type=app.core.types.UTCDateTime(timezone=True), nullable=False)
        batch_op.alter_column('created_at', existing_type=app.core.types.UTCDateTime(timezone=True), nullable=False)
        batch_op.create_check_constraint(op.f('ck_territories_kind_known'), "kind IN ('exclusive', 'shared')")
        batch_op.create_check_constraint(op.f('ck_territories_valid_to_after_valid_from'),
                                         "valid_to IS NULL OR valid_to >= valid_from")

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in FILES:
            bind.exec_driver_sql((SQL / name).read_text(encoding="utf-8"))


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # The v2 functions write no attribution: put them back before the columns go.
        for name in PREVIOUS:
            bind.exec_driver_sql((SQL / name).read_text(encoding="utf-8"))

    with op.batch_alter_table('territories', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_territories_valid_to_after_valid_from'), type_='check')
        batch_op.drop_constraint(op.f('ck_territories_kind_known'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_territories_ended_by_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_territories_created_by_id_users'), type_='foreignkey')
        batch_op.drop_index('ix_territories_region_code_valid_from')
        batch_op.drop_column('created_at')
        batch_op.drop_column('created_by_id')
        batch_op.drop_column('end_reason')
        batch_op.drop_column('ended_by_id')
        batch_op.drop_column('ended_at')
        batch_op.drop_column('valid_to')
        batch_op.drop_column('valid_from')
        batch_op.drop_column('kind')
    # The old unique (partner, region, industry) holds again only for one row of each: keep the earliest.
    op.execute("DELETE FROM territories WHERE id NOT IN (SELECT min(t.id) FROM territories t"
               " GROUP BY t.partner_id, t.region_code, t.industry)")
    with op.batch_alter_table('territories', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_territories_partner_id_region_code_industry'), ['partner_id', 'region_code', 'industry'])

    # Plain columns: ALTER TABLE DROP COLUMN on either engine (SQLite 3.35+), no rebuild of these tables.
    for table, column in (('scan_events', 'agent_id'), ('scan_events', 'partner_id'),
                          ('orders', 'routed_agent_id'), ('orders', 'bringing_agent_id'),
                          ('commission_entries', 'agent_id')):
        op.drop_column(table, column)
