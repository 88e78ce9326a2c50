"""Calls the consumer order tests share."""

from __future__ import annotations

import itertools

import sqlalchemy as sa

from app.accounts.models import User
from app.core.security import Binding, Principal
from app.extensions import db

MP = "/api/mp/v1"
HQ = "/api/hq/v1"
CHENGDU_WUHOU = "510107"
_n = itertools.count(1)


def take(client, headers, world, *, region_code=CHENGDU_WUHOU, lines=None, **extra):
    """POST a consumer order (two cases of milk and a tea unless `lines` says otherwise)."""
    body = {"request_id": f"co-{next(_n)}", "customer": {"name": "刘女士", "phone": "139-0000-0001"},
            "address": "人民南路四段 12 号", "region_code": region_code,
            "lines": lines or [{"sku_id": world["skus"]["MILK250"], "quantity": 2},
                               {"sku_id": world["skus"]["TEA500"], "quantity": 1}],
            "needs_service": True, **extra}
    return client.post(f"{MP}/consumer-orders", json=body, headers=headers)


def staff(openid: str) -> Principal:
    """A mini-program user's principal from their memberships (as their token would carry it)."""
    from app.channel.models import Partner

    user = db.session.scalar(sa.select(User).where(User.openid == openid))
    bindings = []
    for m in user.memberships:
        path = db.session.get(Partner, m.partner_id).path if m.partner_id else None
        bindings.append(Binding(m.role, store_id=m.store_id, partner_id=m.partner_id, partner_path=path))
    return Principal(user.id, "mp", tuple(bindings))


def admin() -> Principal:
    from app.accounts.roles import HQ_ADMIN

    uid = db.session.scalar(sa.select(User.id).where(User.username == "admin"))
    return Principal(uid, "hq", (Binding(HQ_ADMIN),))


def ship_codes_for(app, world, order: dict, warehouse: str = "WH-CENTRAL") -> list[str]:
    """Codes on `warehouse`'s shelf for the order's coded lines, exactly their quantities (cases first)."""
    from app.codes.services import warehouse_codes_available
    from app.inventory.models import Warehouse

    with app.app_context():
        wh = db.session.get(Warehouse, world["warehouses"][warehouse])
        out = [serial for line in order["lines"] if line["serialized"]
               for serial in warehouse_codes_available(wh.location_id, line["sku_id"], line["quantity"])]
        db.session.remove()
    return out


def ship(client, headers, app, world, order: dict, warehouse: str = "WH-CENTRAL", **body):
    """HQ ships the order from `warehouse`'s shelf, naming the codes of its coded lines."""
    return client.post(f"{HQ}/consumer-orders/{order['id']}/ship",
                       json={"codes": ship_codes_for(app, world, order, warehouse), **body}, headers=headers)
