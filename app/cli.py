"""Command-line verbs: `flask seed-demo`, `flask stock verify`, `flask partitions …`, `flask create-hq-user`,
`flask demo …`."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

stock_cli = AppGroup("stock", help="Stock ledger tools.")


@stock_cli.command("verify")
def stock_verify() -> None:
    """Prove the books: every stock level equals its ledger, a serialized SKU's stock at a store (and on its way
    there) and in each warehouse is its unit codes, and no unit was sold twice; exit 1 when one does not hold."""
    from app.scans.books import verify_stock

    problems = verify_stock()
    for p in problems:
        if p["kind"] == "ledger":
            click.echo(f"MISMATCH location={p['location_id']} sku={p['sku_id']} level={p['level_on_hand']}/"
                       f"{p['level_reserved']} ledger={p['ledger_on_hand']}/{p['ledger_reserved']}")
        elif p["kind"] == "unit_count":
            click.echo(f"UNIT COUNT location={p['location_id']} sku={p['sku_id']} on_hand={p['on_hand']} "
                       f"unit_codes={p['unit_codes']} uncoded_opening={p['uncoded_opening']}")
        elif p["kind"] == "warehouse_unit_count":
            click.echo(f"WAREHOUSE UNIT COUNT warehouse={p['warehouse_id']} ({p['warehouse']}) sku={p['sku_id']} "
                       f"({p['sku']}) on_hand={p['on_hand']} in_warehouse_codes={p['unit_codes']} "
                       f"uncoded_opening={p['uncoded_opening']}")
        elif p["kind"] == "dangling_event":
            click.echo(f"DANGLING EVENT {p['table']}.{p['column']}={p['event_id']} ({p['rows']} row(s)) names no event")
        else:
            click.echo(f"SOLD TWICE code={p['code_id']} serial={p['serial']} (sells minus returns reached "
                       f"{p['highest']}, lowest {p['lowest']})")
    if problems:
        kinds = {k: sum(1 for p in problems if p["kind"] == k)
                 for k in ("ledger", "unit_count", "warehouse_unit_count", "sold_twice", "dangling_event")}
        click.echo(f"{len(problems)} problem(s): {kinds['ledger']} level(s) disagree with the ledger, "
                   f"{kinds['unit_count']} serialized store level(s) disagree with their unit codes, "
                   f"{kinds['warehouse_unit_count']} serialized warehouse level(s) disagree with their codes "
                   f"in the warehouse, "
                   f"{kinds['sold_twice']} unit(s) sold twice, "
                   f"{kinds['dangling_event']} reference(s) to a missing event")
        sys.exit(1)
    click.echo("ok: every stock level equals the sum of its ledger, serialized stock equals its unit codes, "
               "no unit sold twice")


partitions_cli = AppGroup("partitions", help="Month partitions of scan_events and stock_movements (PostgreSQL).")


@partitions_cli.command("list")
def partitions_list() -> None:
    """Every partition of the partitioned tables, its range and its rows (an estimate)."""
    from app.core import partitions
    from app.extensions import db

    with db.engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            click.echo("not partitioned: SQLite keeps plain tables")
            return
        for p in partitions.partitions(conn):
            click.echo(f"{p.table}\t{p.name}\t{p.bound}\t~{max(p.rows, 0)} rows")


@partitions_cli.command("ensure")
def partitions_ensure() -> None:
    """Make this month's and the next months' partitions now (what the scheduled job does)."""
    from app.core import partitions

    for name, what in partitions.create_coming_partitions().items():
        click.echo(f"{name}: {what}")


@partitions_cli.command("archive")
@click.option("--before", required=True, help="YYYY-MM: every month before it is archived.")
@click.option("--to", "to_dir", default="archive", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the <partition>.csv.gz files.")
def partitions_archive(before: str, to_dir: str) -> None:
    """Detach every month partition before --before, write it to <to>/<partition>.csv.gz, check the file's rows
    against the table's, and only then drop it."""
    from pathlib import Path

    from app.core import partitions
    from app.extensions import db

    try:
        partitions.parse_period(before)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--before") from exc
    if db.engine.dialect.name != "postgresql":
        click.echo("not partitioned: SQLite keeps plain tables")
        return
    done = partitions.archive_before(db.engine, before, Path(to_dir))
    for a in done:
        click.echo(f"{a.partition}: {a.rows} rows -> {a.path}")
    if not done:
        click.echo(f"nothing before {before}")


def register_cli(app: Flask) -> None:
    """Add every command group; the areas' groups are imported plainly, so a missing one fails start-up."""
    from app.analytics.cli import register_cli as register_analytics_cli
    from app.demo.cli import demo_cli
    from app.orders.cli import register_cli as register_orders_cli

    app.cli.add_command(stock_cli)
    app.cli.add_command(partitions_cli)
    app.cli.add_command(demo_cli)
    register_orders_cli(app)
    register_analytics_cli(app)

    @app.cli.command("seed-demo")
    @click.option("--if-empty", is_flag=True, help="Only seed when the database has no users.")
    def seed_demo(if_empty: bool) -> None:
        """Load the demo data described in the API contract (idempotent)."""
        from app.demo.seed import seed

        result = seed(only_if_empty=if_empty)
        click.echo(result)

    @app.cli.command("create-hq-user")
    @click.argument("username")
    @click.option("--role", default="hq_admin")
    @click.password_option()
    def create_hq_user(username: str, role: str, password: str) -> None:
        """Create an HQ console user."""
        from app.accounts.services import create_hq_user as create
        from app.core.tx import transaction

        with transaction():
            create(username=username, password=password, role=role)
        click.echo(f"created {username} ({role})")
