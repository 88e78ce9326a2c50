"""`flask orders reconcile` and `flask orders expire`: the order jobs a scheduler (cron) runs."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import Flask
from flask.cli import AppGroup

orders_cli = AppGroup("orders", help="Order jobs: payment reconciliation and expiry of unconfirmed proxy orders.")


@orders_cli.command("reconcile")
@click.option("--older-than-minutes", default=5, show_default=True, help="Only orders prepaid at least this long ago.")
def reconcile(older_than_minutes: int) -> None:
    """Ask WeChat Pay about orders left awaiting payment; resend and check refunds."""
    from app.orders.payments import reconcile_payments

    counts = reconcile_payments(older_than=timedelta(minutes=older_than_minutes))
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@orders_cli.command("expire")
def expire() -> None:
    """Cancel proxy orders the owner did not confirm within PROXY_ORDER_CONFIRM_DAYS."""
    from app.orders.services import expire_unconfirmed

    click.echo(f"cancelled={expire_unconfirmed()}")


def register_cli(app: Flask) -> None:
    """Add the `orders` command group to the app."""
    app.cli.add_command(orders_cli)
