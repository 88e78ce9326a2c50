"""The partner's workspace: the foundation's demo plus facts made to measure (sales, stock, orders, scans).

The demo's channel: D1 serves S1 S3 S4, D3 (S5) is also under the agent A1, D2 serves S2 S6. Every fact here is
written as the app writes it (the rollup row, the stock level with its ledger row, the order, the scan event), so
the figures the workspace shows can be checked against numbers the test chose.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.accounts.models import User
from app.analytics.models import DailySales
from app.catalog.models import PriceTier, Sku
from app.channel.models import Partner, Store
from app.codes.models import ScanEvent
from app.core.clock import business_day_start, now_utc, today_business
from app.core.tx import transaction
from app.extensions import db
from app.inventory.models import StockLevel
from app.inventory.services import move_stock
from app.orders.models import Order

_n = itertools.count(1)


@dataclass
class Facts:
    stores: dict[str, int]
    partners: dict[str, int]
    skus: dict[str, int]
    admin_id: int

    def store(self, code: str) -> Store:
        return db.session.get(Store, self.stores[code])

    def sale(self, store: str, sku: str, day: date, units: int, amount_fen: int | None = None) -> None:
        """Units sold on a business day, as the rollup holds them (attributed to the store's distributor)."""
        s = self.store(store)
        with transaction():
            db.session.add(DailySales(day=day, sku_id=self.skus[sku], store_id=s.id, province_code=s.province_code,
                                      city_code=s.city_code, distributor_id=s.distributor_id, units=units,
                                      amount_fen=units * 100 if amount_fen is None else amount_fen))

    def stock(self, store: str, sku: str, on_hand: int) -> None:
        """Bring the store's stock of a SKU to `on_hand`, with its ledger row."""
        s = self.store(store)
        with transaction():
            now = db.session.scalar(sa.select(StockLevel.on_hand).where(
                StockLevel.location_id == s.location_id, StockLevel.sku_id == self.skus[sku])) or 0
            if on_hand != now:
                move_stock(location_id=s.location_id, sku_id=self.skus[sku], on_hand=on_hand - now, kind="adjust",
                           reason="测试")

    def clear_stock(self, store: str) -> None:
        for sku in self.skus:
            self.stock(store, sku, 0)

    def order(self, store: str, status: str, at: datetime | None = None) -> int:
        with transaction():
            o = Order(number=f"T{next(_n):08d}", request_id=f"t-{next(_n)}", store_id=self.stores[store],
                      created_by_id=self.admin_id, status=status, total_fen=1000, created_at=at or now_utc())
            db.session.add(o)
            db.session.flush()
            return o.id

    def scan(self, store: str, at: datetime, action: str = "sell") -> int:
        with transaction():
            e = ScanEvent(sku_id=self.skus["BISC"], quantity=1, action=action, biz_step="retail_selling",
                          disposition="retail_sold", store_id=self.stores[store], event_time=at, recorded_at=at,
                          user_id=self.admin_id)
            db.session.add(e)
            db.session.flush()
            return e.id

    def new_store(self, code: str, distributor: str = "D1", name: str | None = None) -> int:
        from app.channel.services import create_store
        from app.demo.seed import SYSTEM

        tier = db.session.scalar(sa.select(PriceTier.id).where(PriceTier.code == "retail"))
        store = create_store(SYSTEM, code=code, name=name or f"测试店{code}", region_code="330106",
                             distributor_id=self.partners[distributor], price_tier_id=tier)
        self.stores[code] = store.id
        return store.id


def days_ago(n: int, hour: int = 10) -> datetime:
    """An instant `n` business days ago, at `hour` o'clock in China."""
    return business_day_start(today_business() - timedelta(days=n)) + timedelta(hours=hour)


@pytest.fixture()
def facts(foundation_demo) -> Facts:
    out = Facts(
        stores=dict(db.session.execute(sa.select(Store.code, Store.id)).all()),
        partners=dict(db.session.execute(sa.select(Partner.code, Partner.id)).all()),
        skus=dict(db.session.execute(sa.select(Sku.code, Sku.id)).all()),
        admin_id=db.session.scalar(sa.select(User.id).where(User.username == "admin")),
    )
    db.session.remove()
    return out
