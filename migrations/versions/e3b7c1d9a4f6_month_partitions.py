"""month partitions of scan_events and stock_movements (PostgreSQL only)

Revision ID: e3b7c1d9a4f6
Revises: b8d4e2f6a1c3
Create Date: 2026-12-01 14:50:00

On PostgreSQL `scan_events` (by `recorded_at`) and `stock_movements` (by `created_at`) become tables partitioned
by business month (Asia/Shanghai): a partition `<table>_pYYYY_MM` for every month that has rows, this month and the
next three, and `<table>_default`. The rows are moved in this migration's transaction (INSERT ... SELECT into the
new table, then the names swapped); the id sequence, column defaults, indexes and outgoing foreign keys are kept.

What a partitioned table cannot have, and what stands in for it (app/core/partitions.py says why):
- the primary key becomes (id, time column);
- the foreign keys that point at `scan_events.id` (its own parent_event_id and corrects_event_id,
  diversion_alerts.event_id, incentive_credits.event_id) are dropped: `flask stock verify` checks them;
- the unique (user_id, request_id) and unique (corrects_event_id) move to `scan_event_requests` and
  `scan_event_corrections`, filled by a row trigger on insert (a unique violation as before); `scan_events` keeps
  plain indexes of the same columns for lookups.

SQLite: nothing changes. The downgrade makes plain tables again, with the old keys, constraints and rows.
This file holds its own copy of the DDL (a released migration never changes when the app does).
"""
from datetime import datetime
from zoneinfo import ZoneInfo

from alembic import op


# revision identifiers, used by Alembic.
revision = 'e3b7c1d9a4f6'
down_revision = 'b8d4e2f6a1c3'
branch_labels = None
depends_on = None

TZ = ZoneInfo("Asia/Shanghai")
TABLES = {"scan_events": "recorded_at", "stock_movements": "created_at"}
REPLACED = ("uq_scan_events_user_id_request_id", "uq_scan_events_corrects_event_id")
LOOKUPS = ("ix_scan_events_user_id_request_id", "ix_scan_events_corrects_event_id")
INCOMING = (  # the foreign keys to scan_events.id, as the initial schema named them
    ("scan_events", "fk_scan_events_corrects_event_id_scan_events", "corrects_event_id"),
    ("scan_events", "fk_scan_events_parent_event_id_scan_events", "parent_event_id"),
    ("diversion_alerts", "fk_diversion_alerts_event_id_scan_events", "event_id"),
    ("incentive_credits", "fk_incentive_credits_event_id_scan_events", "event_id"),
)

UNIQUE_KEYS_SQL = """
CREATE TABLE IF NOT EXISTS scan_event_requests (
    user_id bigint, request_id varchar(64) NOT NULL, event_id bigint NOT NULL,
    CONSTRAINT uq_scan_event_requests_user_id_request_id UNIQUE (user_id, request_id));
CREATE TABLE IF NOT EXISTS scan_event_corrections (
    corrects_event_id bigint NOT NULL, event_id bigint NOT NULL,
    CONSTRAINT pk_scan_event_corrections PRIMARY KEY (corrects_event_id));
CREATE OR REPLACE FUNCTION scan_events_unique_keys() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.request_id IS NOT NULL THEN
        INSERT INTO scan_event_requests (user_id, request_id, event_id) VALUES (NEW.user_id, NEW.request_id, NEW.id);
    END IF;
    IF NEW.corrects_event_id IS NOT NULL THEN
        INSERT INTO scan_event_corrections (corrects_event_id, event_id) VALUES (NEW.corrects_event_id, NEW.id);
    END IF;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER scan_events_unique_keys AFTER INSERT ON scan_events FOR EACH ROW
    WHEN (NEW.request_id IS NOT NULL OR NEW.corrects_event_id IS NOT NULL) EXECUTE FUNCTION scan_events_unique_keys();
"""


def _next(year, month):
    return (year + (month == 12), month % 12 + 1)


def _bounds(year, month):
    start = datetime(year, month, 1, tzinfo=TZ).isoformat()
    end = datetime(*_next(year, month), 1, tzinfo=TZ).isoformat()
    return f"FROM ('{start}') TO ('{end}')"


def _one(conn, sql, **params):
    return conn.exec_driver_sql(sql, params).scalar()


def _all(conn, sql, **params):
    return conn.exec_driver_sql(sql, params).all()


def _indexes(conn, table):
    """(name, definition) of the table's indexes that are no constraint's."""
    rows = _all(conn, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %(t)s AND indexname NOT IN"
                      " (SELECT conname FROM pg_constraint WHERE conrelid = %(t)s::regclass) ORDER BY 1", t=table)
    return [(name, definition.replace(" ON ONLY ", " ON ")) for name, definition in rows]


def _outgoing(conn, table):
    return _all(conn, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %(t)s::regclass"
                      " AND contype = 'f' AND confrelid <> %(t)s::regclass ORDER BY 1", t=table)


def _rebuild(conn, table, *, partitioned):
    """`table` made again, partitioned by month or plain, with its rows, sequence, defaults, indexes and outgoing
    foreign keys; its primary key (id, time column) or (id)."""
    column = TABLES[table]
    tmp = f"{table}__new"
    indexes, outgoing = _indexes(conn, table), _outgoing(conn, table)
    sequence = _one(conn, "SELECT pg_get_serial_sequence(%(t)s, 'id')", t=table)
    if partitioned:
        conn.exec_driver_sql(f"CREATE TABLE {tmp} (LIKE {table} INCLUDING DEFAULTS) PARTITION BY RANGE ({column})")
        now = datetime.now(TZ)
        wanted = {(now.year, now.month)}
        for _ in range(3):
            wanted.add(_next(*max(wanted)))
        wanted |= {(int(y), int(m)) for y, m in _all(
            conn, f"SELECT DISTINCT extract(year FROM m), extract(month FROM m) FROM"
                  f" (SELECT date_trunc('month', {column} AT TIME ZONE %(tz)s) AS m FROM {table}) s", tz=str(TZ))}
        for year, month in sorted(wanted):
            conn.exec_driver_sql(f"CREATE TABLE {table}_p{year:04d}_{month:02d} PARTITION OF {tmp}"
                                 f" FOR VALUES {_bounds(year, month)}")
        conn.exec_driver_sql(f"CREATE TABLE {table}_default PARTITION OF {tmp} DEFAULT")
    else:
        conn.exec_driver_sql(f"CREATE TABLE {tmp} (LIKE {table} INCLUDING DEFAULTS)")
    conn.exec_driver_sql(f"INSERT INTO {tmp} SELECT * FROM {table}")
    conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY {tmp}.id")
    conn.exec_driver_sql(f"DROP TABLE {table}")  # its partitions with it
    conn.exec_driver_sql(f"ALTER TABLE {tmp} RENAME TO {table}")
    key = f"id, {column}" if partitioned else "id"
    conn.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({key})")
    for name, definition in indexes:
        if name not in REPLACED + LOOKUPS:
            conn.exec_driver_sql(definition)
    for name, definition in outgoing:
        conn.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def upgrade():
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for owner, name, _column in INCOMING:
        conn.exec_driver_sql(f'ALTER TABLE {owner} DROP CONSTRAINT IF EXISTS "{name}"')
    for table in TABLES:
        _rebuild(conn, table, partitioned=True)
    conn.exec_driver_sql("CREATE INDEX ix_scan_events_user_id_request_id ON scan_events (user_id, request_id)"
                         " WHERE request_id IS NOT NULL")
    conn.exec_driver_sql("CREATE INDEX ix_scan_events_corrects_event_id ON scan_events (corrects_event_id)")
    conn.exec_driver_sql(UNIQUE_KEYS_SQL)
    conn.exec_driver_sql("INSERT INTO scan_event_requests (user_id, request_id, event_id)"
                         " SELECT user_id, request_id, id FROM scan_events WHERE request_id IS NOT NULL")
    conn.exec_driver_sql("INSERT INTO scan_event_corrections (corrects_event_id, event_id)"
                         " SELECT corrects_event_id, id FROM scan_events WHERE corrects_event_id IS NOT NULL")


def downgrade():
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql("DROP TRIGGER IF EXISTS scan_events_unique_keys ON scan_events;"
                         " DROP FUNCTION IF EXISTS scan_events_unique_keys();"
                         " DROP TABLE IF EXISTS scan_event_requests, scan_event_corrections")
    for table in TABLES:
        _rebuild(conn, table, partitioned=False)
    conn.exec_driver_sql("CREATE UNIQUE INDEX uq_scan_events_user_id_request_id ON scan_events (user_id, request_id)"
                         " WHERE request_id IS NOT NULL")
    conn.exec_driver_sql("ALTER TABLE scan_events ADD CONSTRAINT uq_scan_events_corrects_event_id"
                         " UNIQUE (corrects_event_id)")
    for owner, name, column in INCOMING:
        conn.exec_driver_sql(f'ALTER TABLE {owner} ADD CONSTRAINT "{name}" FOREIGN KEY ({column})'
                             f" REFERENCES scan_events(id)")
