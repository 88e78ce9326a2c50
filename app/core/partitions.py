"""Month partitions of the tables that grow with every scan, on PostgreSQL (declarative partitioning).

`scan_events` (by `recorded_at`) and `stock_movements` (by `created_at`) are partitioned by business month
(Asia/Shanghai, as `YYYY-MM` periods are): one partition `<table>_pYYYY_MM` per month, and `<table>_default` for
rows outside every month made so far. SQLite keeps plain tables; nothing here runs there.

What partitioning costs, and how it is paid:

- A partitioned table's primary key and unique indexes must include the partition key: the key is
  `(id, <time column>)`. Ids still come from the table's own sequence (`<table>_id_seq`), so they stay unique.
- Nothing can reference `scan_events.id` with a foreign key any more (no unique index on `id` alone). The four
  references (`scan_events.parent_event_id`, `scan_events.corrects_event_id`, `diversion_alerts.event_id`,
  `incentive_credits.event_id`) keep their columns without the constraint; `flask stock verify` reports any that
  names a missing event (`app.scans.books.verify_event_references`). An event is only ever inserted, in the same
  transaction as what names it, so nothing is lost but the engine's own check; archived months are the
  legitimate exception (their ids are below the oldest kept one, and the check skips them).
- The two "at most one" rules of `scan_events` that do not contain the time column, one event per client request
  (`user_id, request_id`: the hot sell path's idempotency) and one undo per event (`corrects_event_id`), move to
  two small tables with ordinary unique keys, `scan_event_requests` and `scan_event_corrections`, filled by a row
  trigger in the inserting statement: a second insert fails with a unique violation exactly as before, under any
  concurrency, and the hot path's fallback on that error is unchanged. `scan_events` keeps plain indexes on both
  for lookups.

The models describe the plain (SQLite) shape; `include_object` tells autogenerate (migrations/env.py, and the
schema test) what on PostgreSQL is partitioning's own.
"""

from __future__ import annotations

import gzip
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from app.core.clock import BUSINESS_TZ

log = logging.getLogger(__name__)

# table → its partition key (a timestamptz column, NOT NULL)
PARTITIONED = {"scan_events": "recorded_at", "stock_movements": "created_at"}
MONTHS_AHEAD = 3
SIDE_TABLES = ("scan_event_requests", "scan_event_corrections")
# What the models declare that on PostgreSQL the side tables (and plain indexes) stand for.
_REPLACED = {"uq_scan_events_user_id_request_id", "uq_scan_events_corrects_event_id"}
_ADDED_INDEXES = {"ix_scan_events_user_id_request_id", "ix_scan_events_corrects_event_id"}
_PARTITION_NAME = re.compile(r"^(" + "|".join(PARTITIONED) + r")_(p\d{4}_\d{2}|default)$")

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


# --- months ---------------------------------------------------------------------------------------------------

def month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=BUSINESS_TZ)


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + (month == 12), month % 12 + 1)


def months_from(first: tuple[int, int], count: int) -> list[tuple[int, int]]:
    out = [first]
    while len(out) < count:
        out.append(next_month(*out[-1]))
    return out


def partition_name(table: str, year: int, month: int) -> str:
    return f"{table}_p{year:04d}_{month:02d}"


def parse_period(period: str) -> tuple[int, int]:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period or ""):
        raise ValueError(f"not a YYYY-MM month: {period!r}")
    return int(period[:4]), int(period[5:7])


def current_month() -> tuple[int, int]:
    today = datetime.now(BUSINESS_TZ).date()
    return today.year, today.month


def _bounds_sql(year: int, month: int) -> str:
    start, end = month_start(year, month), month_start(*next_month(year, month))
    return f"FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"


# --- what is there ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    bound: str  # pg_get_expr of the bound: "FOR VALUES FROM (...) TO (...)" or "DEFAULT"
    rows: int  # an estimate (pg_class.reltuples), -1 before the first ANALYZE


def is_partitioned(conn: sa.Connection, table: str) -> bool:
    return bool(conn.exec_driver_sql(
        "SELECT 1 FROM pg_class WHERE relname = %(t)s AND relkind = 'p'", {"t": table}).scalar())


def partitions(conn: sa.Connection, table: str | None = None) -> list[Partition]:
    rows = conn.exec_driver_sql(
        "SELECT p.relname, c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint"
        " FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE p.relkind = 'p' AND p.relname = ANY(%(tables)s) ORDER BY p.relname, c.relname",
        {"tables": [table] if table else list(PARTITIONED)}).all()
    return [Partition(*r) for r in rows]


# --- making months --------------------------------------------------------------------------------------------

def ensure_month(conn: sa.Connection, table: str, year: int, month: int) -> str:
    """The month's partition of `table`, made if missing (idempotent). Rows of that month that landed in the
    DEFAULT partition meanwhile are moved into it: DEFAULT is detached, the month made, its rows moved, DEFAULT
    attached again, all in the caller's transaction (PostgreSQL refuses a new partition whose range DEFAULT
    holds rows). Returns what it did: "exists", "created" or "created, moved N rows from default"."""
    column, name = PARTITIONED[table], partition_name(table, year, month)
    if conn.exec_driver_sql("SELECT to_regclass(%(n)s)", {"n": name}).scalar():
        return "exists"
    start, end = month_start(year, month), month_start(*next_month(year, month))
    default = f"{table}_default"
    has_default = conn.exec_driver_sql("SELECT to_regclass(%(n)s)", {"n": default}).scalar()
    stray = 0
    if has_default:
        stray = conn.exec_driver_sql(
            f"SELECT count(*) FROM {default} WHERE {column} >= %(s)s AND {column} < %(e)s",
            {"s": start, "e": end}).scalar()
    if not stray:
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} "
                             f"FOR VALUES {_bounds_sql(year, month)}")
        log.info("partition %s created", name)
        return "created"
    conn.exec_driver_sql(f"ALTER TABLE {table} DETACH PARTITION {default}")
    conn.exec_driver_sql(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES {_bounds_sql(year, month)}")
    moved = conn.exec_driver_sql(
        f"WITH m AS (DELETE FROM {default} WHERE {column} >= %(s)s AND {column} < %(e)s RETURNING *)"
        f" INSERT INTO {name} SELECT * FROM m", {"s": start, "e": end}).rowcount
    conn.exec_driver_sql(f"ALTER TABLE {table} ATTACH PARTITION {default} DEFAULT")
    log.warning("partition %s created; %s rows of its month moved out of %s", name, moved, default)
    return f"created, moved {moved} rows from default"


def ensure_months(conn: sa.Connection, *, ahead: int = MONTHS_AHEAD,
                  first: tuple[int, int] | None = None) -> dict[str, str]:
    """This month's and the next `ahead` months' partitions of every partitioned table, and those of any month
    whose rows sit in DEFAULT (back-dated rows, a month the job missed), which are moved out (idempotent)."""
    if conn.dialect.name != "postgresql":
        return {}
    done = {}
    for table in PARTITIONED:
        if not is_partitioned(conn, table):
            continue
        stranded = conn.exec_driver_sql(
            f"SELECT DISTINCT extract(year FROM m)::int, extract(month FROM m)::int FROM (SELECT"
            f" date_trunc('month', {PARTITIONED[table]} AT TIME ZONE %(tz)s) AS m FROM {table}_default) s",
            {"tz": str(BUSINESS_TZ)}).all() if conn.exec_driver_sql(
                "SELECT to_regclass(%(n)s)", {"n": f"{table}_default"}).scalar() else []
        coming = months_from(first or current_month(), ahead + 1)
        for year, month in sorted(set(coming) | {(y, m) for y, m in stranded}):
            done[partition_name(table, year, month)] = ensure_month(conn, table, year, month)
    return done


def create_coming_partitions() -> dict[str, str]:
    """The scheduled job (app/cron.py): the coming months' partitions exist before their first row."""
    from app.extensions import db

    with db.engine.begin() as conn:
        # One maker at a time: two runs racing would both see a month missing.
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('partitions'))"
                             if conn.dialect.name == "postgresql" else "SELECT 1")
        done = ensure_months(conn)
    made = {k: v for k, v in done.items() if v != "exists"}
    if made:
        log.info("partitions made: %s", made)
    return done


# --- archiving --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Archived:
    partition: str
    path: Path
    rows: int


def archive_before(engine: sa.Engine, before: str, to_dir: Path) -> list[Archived]:
    """Every month partition wholly before the month `before` (YYYY-MM): detached, written to
    `<to_dir>/<partition>.csv.gz` (COPY ... TO STDOUT WITH CSV HEADER), the file read back and its rows counted
    against the table's, and only then dropped. A partition detached by an earlier run that stopped midway (still
    a table of that name, no longer attached) is archived the same way. A mismatch raises and leaves the detached
    table in place."""
    first_kept = parse_period(before)
    to_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for table in PARTITIONED:
        with engine.connect() as conn:
            if not is_partitioned(conn, table):
                continue
            attached = {p.name for p in partitions(conn, table)}
            candidates = conn.exec_driver_sql(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname ~ %(re)s ORDER BY relname",
                {"re": f"^{table}_p[0-9]{{4}}_[0-9]{{2}}$"}).scalars().all()
        for name in candidates:
            year, month = int(name[-7:-3]), int(name[-2:])
            if (year, month) >= first_kept:
                continue
            if name in attached:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"ALTER TABLE {table} DETACH PARTITION {name}")
                log.info("partition %s detached", name)
            done.append(_write_and_drop(engine, name, to_dir))
    return done


def _write_and_drop(engine: sa.Engine, name: str, to_dir: Path) -> Archived:
    path = to_dir / f"{name}.csv.gz"
    partial = path.with_suffix(".gz.partial")
    with engine.connect() as conn:
        expected = conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar()
        cursor = conn.connection.driver_connection.cursor()
        with gzip.open(partial, "wb") as out, cursor.copy(f"COPY {name} TO STDOUT WITH (FORMAT csv, HEADER)") as cp:
            for chunk in cp:
                out.write(chunk)
        conn.rollback()
    written = _count_csv_rows(partial)
    if written != expected:
        raise RuntimeError(f"{partial}: {written} rows written, {expected} in {name}; {name} kept (detached)")
    partial.replace(path)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {name}")
    log.info("partition %s archived to %s (%s rows) and dropped", name, path, expected)
    return Archived(name, path, expected)


def _count_csv_rows(path: Path) -> int:
    import csv
    import io

    with gzip.open(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        return sum(1 for _ in csv.reader(text)) - 1  # the header


# --- making a table partitioned (create_all on PostgreSQL; the migration holds its own copy) ---------------------

def convert(conn: sa.Connection, table: str, *, first: tuple[int, int] | None = None) -> None:
    """Turn the plain `table` into one partitioned by month, with its rows: partitions for every month that has
    rows, this month and the next MONTHS_AHEAD, and DEFAULT; same columns, defaults, sequence, indexes and
    outgoing foreign keys; incoming foreign keys dropped (see the module's docstring)."""
    column = PARTITIONED[table]
    tmp = f"{table}__partitioned"
    indexes = conn.exec_driver_sql(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %(t)s AND i.indexname NOT IN"
        " (SELECT conname FROM pg_constraint WHERE conrelid = %(t)s::regclass) ORDER BY 1", {"t": table}).all()
    outgoing = conn.exec_driver_sql(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %(t)s::regclass"
        " AND contype = 'f' AND confrelid <> %(t)s::regclass ORDER BY 1", {"t": table}).all()
    incoming = conn.exec_driver_sql(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE confrelid = %(t)s::regclass"
        " AND contype = 'f' ORDER BY 1, 2", {"t": table}).all()
    for owner, name in incoming:
        conn.exec_driver_sql(f'ALTER TABLE {owner} DROP CONSTRAINT "{name}"')
    sequence = conn.exec_driver_sql("SELECT pg_get_serial_sequence(%(t)s, 'id')", {"t": table}).scalar()
    conn.exec_driver_sql(f"CREATE TABLE {tmp} (LIKE {table} INCLUDING DEFAULTS) PARTITION BY RANGE ({column})")
    months = conn.exec_driver_sql(
        f"SELECT DISTINCT extract(year FROM m)::int, extract(month FROM m)::int FROM"
        f" (SELECT date_trunc('month', {column} AT TIME ZONE %(tz)s) AS m FROM {table}) s",
        {"tz": str(BUSINESS_TZ)}).all()
    wanted = sorted({(y, m) for y, m in months} | set(months_from(first or current_month(), MONTHS_AHEAD + 1)))
    for year, month in wanted:
        conn.exec_driver_sql(f"CREATE TABLE {partition_name(table, year, month)} PARTITION OF {tmp} "
                             f"FOR VALUES {_bounds_sql(year, month)}")
    conn.exec_driver_sql(f"CREATE TABLE {table}_default PARTITION OF {tmp} DEFAULT")
    conn.exec_driver_sql(f"INSERT INTO {tmp} SELECT * FROM {table}")
    conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY {tmp}.id")
    conn.exec_driver_sql(f"DROP TABLE {table}")
    conn.exec_driver_sql(f"ALTER TABLE {tmp} RENAME TO {table}")
    conn.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (id, {column})")
    for name, definition in indexes:
        if name in _REPLACED:
            continue
        conn.exec_driver_sql(definition)
    for name, definition in outgoing:
        conn.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    if table == "scan_events":
        conn.exec_driver_sql("CREATE INDEX ix_scan_events_user_id_request_id ON scan_events (user_id, request_id)"
                             " WHERE request_id IS NOT NULL")
        conn.exec_driver_sql("CREATE INDEX ix_scan_events_corrects_event_id ON scan_events (corrects_event_id)")
        conn.exec_driver_sql(UNIQUE_KEYS_SQL)
        conn.exec_driver_sql(
            "INSERT INTO scan_event_requests (user_id, request_id, event_id)"
            " SELECT user_id, request_id, id FROM scan_events WHERE request_id IS NOT NULL")
        conn.exec_driver_sql(
            "INSERT INTO scan_event_corrections (corrects_event_id, event_id)"
            " SELECT corrects_event_id, id FROM scan_events WHERE corrects_event_id IS NOT NULL")


def convert_after_create_all(target, connection, **_kw) -> None:
    """`create_all` on PostgreSQL (the tests' databases) partitions the tables as the migrations do."""
    if connection.dialect.name == "postgresql":
        for table in PARTITIONED:
            if not is_partitioned(connection, table):
                convert(connection, table)


def drop_side_tables_before_drop_all(target, connection, **_kw) -> None:
    """`drop_all` on PostgreSQL drops the side tables too (they are no model's)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("DROP TABLE IF EXISTS scan_event_requests, scan_event_corrections;"
                                   " DROP FUNCTION IF EXISTS scan_events_unique_keys() CASCADE")


def side_tables(conn: sa.Connection) -> list[str]:
    """The side tables present (PostgreSQL, partitioned): what a caller clearing every table clears too."""
    if conn.dialect.name != "postgresql":
        return []
    return [t for t in SIDE_TABLES if conn.exec_driver_sql("SELECT to_regclass(%(t)s)", {"t": t}).scalar()]


# --- autogenerate -----------------------------------------------------------------------------------------------

def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """For alembic's comparison on PostgreSQL: leave out what partitioning adds or takes away (partitions, the
    side tables, the foreign keys to `scan_events`, the unique rules the side tables now keep)."""
    if type_ == "table":
        return not (reflected and compare_to is None and (_PARTITION_NAME.match(name) or name in SIDE_TABLES))
    if type_ == "foreign_key_constraint":
        return getattr(getattr(obj, "referred_table", None), "name", None) not in PARTITIONED
    if type_ in ("index", "unique_constraint"):
        return name not in _REPLACED and name not in _ADDED_INDEXES
    return True


def is_partition_name(name: str) -> bool:
    return bool(_PARTITION_NAME.match(name))


__all__ = ["PARTITIONED", "Archived", "Partition", "archive_before", "convert", "create_coming_partitions",
           "ensure_month", "ensure_months", "include_object", "is_partition_name", "partitions"]
