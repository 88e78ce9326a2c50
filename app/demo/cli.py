"""`flask demo …`: what a person trying the demo needs that a real WeChat or a real warehouse would give them.

- `flask demo pay ORDER_NUMBER`: pay an order awaiting payment as its store's owner would in WeChat. The app asks
  the local fake WeChat Pay for a prepay (as the mini-program's 付款 does), then the fake "pays" it and sends its
  real signed TRANSACTION.SUCCESS notification to the server's callback (`WECHATPAY_NOTIFY_URL`), which books it.
  The server (`scripts/run`) and the fake must be running.
- `flask demo cases S1`: the case codes on their way to a store (to scan in on the mini-program), and with
  `--warehouse WH-HZ` the cases on a warehouse's shelves (to scan at the console's shipping desk).
"""

from __future__ import annotations

import sys

import click
import requests
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from app.errors import AppError

demo_cli = AppGroup("demo", help="Demo helpers: pay an order through the fake WeChat Pay, list case codes.")


@demo_cli.command("pay")
@click.argument("number")
def pay(number: str) -> None:
    """Pay order NUMBER through the fake WeChat Pay (its signed notification reaches the running server)."""
    from app.accounts.models import Membership, User
    from app.accounts.roles import STORE_OWNER
    from app.core.security import Binding, Principal
    from app.extensions import db
    from app.orders import payments, states
    from app.orders.models import Order

    order = db.session.scalar(sa.select(Order).where(Order.number == number.replace("-", "").strip()))
    if order is None:
        click.echo(f"no order {number}")
        sys.exit(1)
    if order.status != states.AWAITING_PAYMENT:
        click.echo(f"order {order.number} is {order.status} ({states.STATUS_NAMES.get(order.status)}), "
                   "not awaiting payment")
        sys.exit(1)
    owner = db.session.scalar(sa.select(User).join(Membership, Membership.user_id == User.id).where(
        Membership.store_id == order.store_id, Membership.role == STORE_OWNER, User.openid.is_not(None)))
    if owner is None:
        click.echo(f"store {order.store_id} has no owner with a WeChat login to pay as")
        sys.exit(1)
    order_id, store_id = order.id, order.store_id
    db.session.rollback()
    principal = Principal(user_id=owner.id, kind="mp", bindings=(Binding(STORE_OWNER, store_id=store_id),))
    base = current_app.config["WECHATPAY_API_BASE"].rstrip("/")
    try:
        payments.start_wechat_payment(principal, order_id)
        resp = requests.post(f"{base}/_fake/pay/{order.number}/pay", json={"notify": True}, timeout=15)
        answer = resp.json()
    except (AppError, requests.RequestException, ValueError) as exc:
        click.echo(f"could not pay through the fake WeChat Pay at {base} (is it running? scripts/run starts it): "
                   f"{getattr(exc, 'message', exc)}")
        sys.exit(1)
    if resp.status_code != 200:
        click.echo(f"the fake WeChat Pay at {base} refused: {answer}")
        sys.exit(1)
    click.echo(f"paid {order.number} as {owner.display_name} (transaction {answer['transaction_id']}); "
               f"notification to {answer['notify_url']}: "
               f"{answer['status_code'] if answer['status_code'] is not None else answer['error']}")
    db.session.expire_all()
    status = db.session.get(Order, order_id).status
    click.echo(f"order {order.number} is now {status} ({states.STATUS_NAMES.get(status)})")
    if status != states.PAID:
        sys.exit(1)


@demo_cli.command("cases")
@click.argument("store", required=False)
@click.option("--warehouse", "warehouse", help="A warehouse code (WH-CENTRAL, WH-HZ, WH-SZ): its cases in stock.")
def cases(store: str | None, warehouse: str | None) -> None:
    """Case codes on their way to STORE (a store code such as S1), or on the shelves of --warehouse."""
    from app.catalog.models import Sku
    from app.channel.models import Store
    from app.codes.models import Code
    from app.extensions import db
    from app.inventory.models import Warehouse

    if bool(store) == bool(warehouse):
        click.echo("name a store (flask demo cases S1) or a warehouse (flask demo cases --warehouse WH-HZ)")
        sys.exit(2)
    units = (sa.select(sa.func.count(Code.id)).where(Code.case_id == sa.literal_column("cases.id"))
             .correlate_except(Code).scalar_subquery())
    cases_ = sa.orm.aliased(Code, name="cases")
    stmt = sa.select(cases_.serial, Sku.name, units).join(Sku, Sku.id == cases_.sku_id).where(cases_.kind == "case")
    if store:
        row = db.session.scalar(sa.select(Store).where(Store.code == store))
        if row is None:
            click.echo(f"no store {store}")
            sys.exit(1)
        stmt = stmt.where(cases_.state == "in_transit", cases_.destination_store_id == row.id)
        title = f"case codes in transit to {row.code} {row.name}"
    else:
        row = db.session.scalar(sa.select(Warehouse).where(Warehouse.code == warehouse))
        if row is None:
            click.echo(f"no warehouse {warehouse}")
            sys.exit(1)
        stmt = stmt.where(cases_.state == "in_warehouse", cases_.location_id == row.location_id)
        title = f"case codes in stock at {row.code} {row.name}"
    found = db.session.execute(stmt.order_by(cases_.id)).all()
    click.echo(f"{title}: {len(found)}")
    for serial, sku, n in found:
        click.echo(f"{serial}  {sku} ×{n}")
