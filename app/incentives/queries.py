"""Reads about scan incentives: rules, and a store's ledger and balance."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.catalog.models import Sku
from app.codes.models import Code
from app.core.security import Principal, authorize_store
from app.extensions import db
from app.incentives.models import IncentiveCredit, IncentiveRule


def list_rules() -> list[IncentiveRule]:
    return list(db.session.scalars(sa.select(IncentiveRule).order_by(IncentiveRule.sku_id, IncentiveRule.step)))


def list_store_ledger(principal: Principal, store_id: int, *, page: int, page_size: int) -> dict[str, Any]:
    """The store's ledger entries (credits and reversals), newest first, with the balance of points and fen."""
    authorize_store(principal, "incentive.read", store_id)
    totals = db.session.execute(sa.select(sa.func.coalesce(sa.func.sum(IncentiveCredit.points), 0),
                                          sa.func.coalesce(sa.func.sum(IncentiveCredit.amount_fen), 0),
                                          sa.func.count())
                                .where(IncentiveCredit.store_id == store_id)).one()
    code_id = sa.func.coalesce(IncentiveCredit.code_id, IncentiveCredit.reversed_code_id)
    rows = db.session.execute(
        sa.select(IncentiveCredit, Code.serial, Sku.name).outerjoin(Code, Code.id == code_id)
        .join(Sku, Sku.id == IncentiveCredit.sku_id).where(IncentiveCredit.store_id == store_id)
        .order_by(IncentiveCredit.id.desc()).limit(page_size).offset((page - 1) * page_size)).all()
    # A reversal entry takes back a credit whose scan was undone; the credit it reverses says `reversed`.
    items = [{"id": c.id, "serial": serial, "sku_id": c.sku_id, "sku_name": name, "step": c.step,
              "kind": "reversal" if c.reverses_id is not None else "credit",
              "reversed": c.reverses_id is None and c.code_id is None, "reverses_id": c.reverses_id,
              "points": c.points, "amount_fen": c.amount_fen, "event_id": c.event_id, "created_at": c.created_at}
             for c, serial, name in rows]
    return {"store_id": store_id, "balance_points": int(totals[0]), "balance_fen": int(totals[1]),
            "items": items, "page": page, "page_size": page_size, "total": totals[2]}
