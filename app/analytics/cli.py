"""`flask analytics rebuild`: recompute the sell-through rollup from the scan events."""

from __future__ import annotations

from datetime import date, timedelta

import click
from flask import Flask
from flask.cli import AppGroup

analytics_cli = AppGroup("analytics", help="Sell-through rollups.")


@analytics_cli.command("fold")
@click.option("--every", type=float, default=None,
              help="Keep folding, every this many seconds (without it: fold once and exit).")
def fold_command(every: float | None) -> None:
    """Add the sales recorded since the last fold to the rollups (what `rq cron` runs every few seconds)."""
    import time

    from app.analytics.rollups import fold

    while True:
        n = fold()
        click.echo(f"folded {n} inbox rows")
        if every is None:
            return
        time.sleep(every)


@analytics_cli.command("rebuild")
@click.option("--from", "from_day", type=click.DateTime(["%Y-%m-%d"]),
              help="First business day (default: 90 days ago).")
@click.option("--to", "to_day", type=click.DateTime(["%Y-%m-%d"]), help="Last business day (default: today).")
def rebuild_command(from_day, to_day) -> None:
    """Recompute daily_sales for a range of business days from the scan events, in one transaction."""
    from app.analytics.rollups import rebuild
    from app.core.clock import today_business
    from app.core.tx import transaction
    from app.extensions import db

    end: date = to_day.date() if to_day else today_business()
    start: date = from_day.date() if from_day else end - timedelta(days=89)
    with transaction():
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        n = rebuild(start, end)
    click.echo(f"rebuilt daily_sales {start}..{end}: {n} rows")


def register_cli(app: Flask) -> None:
    """Add the `analytics` command group."""
    app.cli.add_command(analytics_cli)
