"""Reads about the catalog."""

from __future__ import annotations

import sqlalchemy as sa

from app.catalog.models import PriceTier, Product, Sku, SkuPrice
from app.extensions import db


def get_sku(sku_id: int) -> Sku | None:
    return db.session.get(Sku, sku_id)


def get_product(product_id: int) -> Product | None:
    return db.session.get(Product, product_id)


def sku_counts() -> dict[int, int]:
    """How many SKUs each product has, by product id."""
    return dict(db.session.execute(sa.select(Sku.product_id, sa.func.count()).group_by(Sku.product_id)).all())


def get_sku_by_gtin(gtin14: str) -> Sku | None:
    return db.session.scalar(sa.select(Sku).where(Sku.gtin == gtin14))


def catalog_for_tier(price_tier_id: int) -> list[dict]:
    """Active SKUs that have a price in this tier, with that price."""
    rows = db.session.execute(
        sa.select(Sku, Product.name, SkuPrice.price_fen)
        .join(Product, Product.id == Sku.product_id)
        .join(SkuPrice, sa.and_(SkuPrice.sku_id == Sku.id, SkuPrice.price_tier_id == price_tier_id))
        .where(Sku.is_active.is_(True))
        .order_by(Sku.id)
    ).all()
    return [
        {"sku_id": sku.id, "code": sku.code, "name": sku.name, "product_name": product_name, "gtin": sku.gtin,
         "specification": sku.specification, "unit": sku.unit, "case_unit": sku.case_unit,
         "case_pack": sku.case_pack,
         "min_order_quantity": sku.min_order_quantity, "serialized": sku.serialized, "price_fen": price_fen}
        for sku, product_name, price_fen in rows
    ]


def list_skus() -> sa.Select:
    return sa.select(Sku).order_by(Sku.id)


def skus_by_id() -> dict[int, Sku]:
    """Every SKU (active or not) by id, in id order."""
    return {s.id: s for s in db.session.scalars(list_skus())}


def list_products() -> sa.Select:
    return sa.select(Product).order_by(Product.id)


def list_price_tiers() -> list[PriceTier]:
    return list(db.session.scalars(sa.select(PriceTier).order_by(PriceTier.id)))


def list_serialized_skus() -> list[dict]:
    """Active SKUs managed one item one code (the ones a code batch can be issued for), with their packing."""
    return [{"id": s.id, "code": s.code, "name": s.name, "unit": s.unit, "case_unit": s.case_unit,
             "case_pack": s.case_pack}
            for s in db.session.scalars(sa.select(Sku).where(Sku.serialized.is_(True), Sku.is_active.is_(True))
                                        .order_by(Sku.id))]
