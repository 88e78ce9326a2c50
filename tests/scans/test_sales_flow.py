"""Every sale reaches the rollups one way, the sales inbox, on both paths: a hot-path sell and a general-path sell
each leave one inbox row of the same cell in their own transaction, and a fold counts each once."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from app.analytics.models import DailySales, SalesInbox
from app.analytics.rollups import fold
from app.catalog.models import SkuPrice
from app.core import events
from app.core.clock import business_day
from app.extensions import db
from app.scans import services as scan_services
from app.scans.services import EncodedAnswer, ScanInput, scan
from tests.scans.helpers import codes_in, owner_principal, store

ROOT = Path(__file__).resolve().parents[2]


def _sell(serial: str) -> ScanInput:
    return ScanInput(request_id=uuid.uuid4().hex, code=serial, action="sell",
                     scanned_at=datetime.now(UTC).replace(microsecond=0))


def _inbox() -> list[tuple]:
    db.session.remove()
    return [tuple(r) for r in db.session.execute(sa.select(
        SalesInbox.day, SalesInbox.sku_id, SalesInbox.store_id, SalesInbox.units, SalesInbox.amount_fen)
        .order_by(SalesInbox.id))]


def test_a_hot_path_sell_and_a_general_path_sell_reach_the_rollups_alike(postgres, demo, monkeypatch):
    first, second = ((c.serial, c.sku_id) for c in codes_in("S1", n=2))
    s1 = store("S1")
    s1_id = s1.id
    principal = owner_principal("S1")
    price = db.session.scalar(sa.select(SkuPrice.price_fen).where(SkuPrice.sku_id == first[1],
                                                                  SkuPrice.price_tier_id == s1.price_tier_id)) or 0
    assert second[1] == first[1]
    fold()
    assert _inbox() == []
    hot = _sell(first[0])
    assert isinstance(scan(principal, hot), EncodedAnswer)
    after_hot = _inbox()
    with monkeypatch.context() as m:
        m.setattr(scan_services, "_hot_enabled", lambda: False)
        general = _sell(second[0])
        assert type(scan(principal, general)) is dict
    cell = (business_day(hot.scanned_at), first[1], s1_id, 1, price)
    assert after_hot == [cell]
    assert _inbox() == [cell, (business_day(general.scanned_at), first[1], s1_id, 1, price)]
    before = db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(DailySales.units), 0)).where(
        DailySales.store_id == s1_id, DailySales.sku_id == first[1]))
    assert fold() == 2
    assert fold() == 0
    assert db.session.scalar(sa.select(sa.func.sum(DailySales.units)).where(
        DailySales.store_id == s1_id, DailySales.sku_id == first[1])) == before + 2


def test_there_is_no_second_way_for_a_sale_to_reach_the_rollups():
    """No sales signal that one path sends and the other bypasses: the inbox is the one way."""
    assert not hasattr(events, "units_sold")
    used = re.compile(r"\bunits_sold\s*[.=(]")  # sent, connected or defined
    found = sorted(str(p.relative_to(ROOT)) for top in ("app", "miniprogram_api") for p in (ROOT / top).rglob("*.py")
                   if used.search(p.read_text(encoding="utf-8")))
    assert found == []
