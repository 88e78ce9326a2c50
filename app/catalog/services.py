"""Writes to the catalog: each use case takes the caller, checks them and owns its transaction."""

from __future__ import annotations

import sqlalchemy as sa

from app.catalog.gtin import normalize_gtin
from app.catalog.models import PriceTier, Product, Sku, SkuPrice
from app.catalog.units import pack_text
from app.core.security import Principal, authorize
from app.core.tx import transaction
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db


def create_price_tier(principal: Principal, *, code: str, name: str) -> PriceTier:
    """A price tier (HQ)."""
    authorize(principal, "hq.write")
    with transaction():
        return _create_price_tier(code=code, name=name)


def _create_price_tier(*, code: str, name: str) -> PriceTier:
    if db.session.scalar(sa.select(PriceTier.id).where(PriceTier.code == code)):
        raise Conflict("这个价格等级已存在", code="price_tier_code_taken")
    tier = PriceTier(code=code, name=name)
    db.session.add(tier)
    db.session.flush()
    return tier


def create_product(principal: Principal, *, name: str, brand: str = "", category: str = "") -> Product:
    """A product (HQ)."""
    authorize(principal, "hq.write")
    with transaction():
        return _create_product(name=name, brand=brand, category=category)


def _create_product(*, name: str, brand: str, category: str) -> Product:
    product = Product(name=name, brand=brand, category=category)
    db.session.add(product)
    db.session.flush()
    return product


def update_product(principal: Principal, product_id: int, *, name: str | None = None, brand: str | None = None,
                   category: str | None = None) -> Product:
    """Rename a product, or change its brand or category (HQ); a field not given stays as it is."""
    authorize(principal, "hq.write")
    if name is not None and not name.strip():
        raise ValidationFailed("请填写产品名称", code="product_name_missing",
                               details={"fields": {"name": ["请填写产品名称"]}})
    with transaction():
        product = db.session.get(Product, product_id)
        if product is None:
            raise NotFound("找不到这个产品", code="product_not_found")
        for key, value in (("name", name), ("brand", brand), ("category", category)):
            if value is not None:
                setattr(product, key, value.strip())
        db.session.flush()
        return product


def _gtin(value: str) -> str:
    try:
        return normalize_gtin(value)
    except ValueError:
        raise ValidationFailed("条码不对：位数或校验位有误", code="invalid_gtin",
                               details={"fields": {"gtin": ["校验位不对"]}}) from None


def create_sku(principal: Principal, *, product_id: int, code: str, name: str, gtin: str, specification: str = "",
               unit: str = "件", case_unit: str = "箱", case_pack: int = 1, min_order_quantity: int | None = None,
               serialized: bool = True, prices: dict[int, int] | None = None) -> Sku:
    """A SKU with a validated GTIN and its price (fen) per price tier id (HQ); the minimum order quantity, when
    not given, is one case."""
    authorize(principal, "hq.write")
    if min_order_quantity is None:
        min_order_quantity = case_pack
    with transaction():
        return _create_sku(product_id=product_id, code=code, name=name, gtin=gtin, specification=specification,
                           unit=unit, case_unit=case_unit, case_pack=case_pack,
                           min_order_quantity=min_order_quantity, serialized=serialized, prices=prices)


def check_packing(*, unit: str, case_unit: str, case_pack: int, min_order_quantity: int) -> None:
    """The units and case pack a SKU may have (ValidationFailed with the field's message otherwise).

    Orders count sellable units and come in whole cases (`app.orders.services`), so the minimum order quantity
    is a whole number of cases: a minimum of 5 提 at 每箱 6 提 could never be ordered as written. A case of more
    than one unit is named apart from the unit (每箱 6 提, not 每箱 6 箱).
    """
    unit, case_unit = (unit or "").strip(), (case_unit or "").strip()
    if not unit or not case_unit:
        field = "unit" if not unit else "case_unit"
        raise ValidationFailed("请写上单位", code="unit_missing", details={"fields": {field: ["请写上单位"]}})
    if case_pack < 1 or min_order_quantity < 1:
        raise ValidationFailed("箱规和起订量都至少为 1", code="invalid_quantity")
    if case_pack > 1 and unit == case_unit:
        message = f"一{case_unit}装 {case_pack} 个，售卖单位不能也叫“{unit}”（比如 每箱 6 提）"
        raise ValidationFailed(message, code="case_unit_same_as_unit",
                               details={"fields": {"case_unit": [message]}, "unit": unit, "case_pack": case_pack})
    if min_order_quantity % case_pack:
        low = max(case_pack, min_order_quantity - min_order_quantity % case_pack)
        high = low if low >= min_order_quantity else low + case_pack
        options = f"{low} {unit}" if low == high else f"{low} 或 {high} {unit}"
        message = f"起订量要是整{case_unit}：{pack_text(case_pack, unit, case_unit)}，可以写 {options}"
        raise ValidationFailed(message, code="min_order_not_whole_cases",
                               details={"fields": {"min_order_quantity": [message]}, "case_pack": case_pack,
                                        "min_order_quantity": min_order_quantity})


def _create_sku(*, product_id: int, code: str, name: str, gtin: str, specification: str, unit: str, case_unit: str,
                case_pack: int, min_order_quantity: int, serialized: bool, prices: dict[int, int] | None) -> Sku:
    if db.session.get(Product, product_id) is None:
        raise NotFound("找不到这个产品", code="product_not_found")
    gtin14 = _gtin(gtin)
    if db.session.scalar(sa.select(Sku.id).where(sa.or_(Sku.gtin == gtin14, Sku.code == code))):
        raise Conflict("这个条码或 SKU 编号已经在用", code="sku_taken")
    check_packing(unit=unit, case_unit=case_unit, case_pack=case_pack, min_order_quantity=min_order_quantity)
    sku = Sku(product_id=product_id, code=code, name=name, gtin=gtin14, specification=specification,
              unit=unit.strip(), case_unit=case_unit.strip(), case_pack=case_pack,
              min_order_quantity=min_order_quantity, serialized=serialized)
    db.session.add(sku)
    db.session.flush()
    _set_prices(sku, prices or {})
    return sku


def update_sku(principal: Principal, sku_id: int, **changes) -> Sku:
    """Change a SKU's fields, and its prices per tier id (`prices`) (HQ)."""
    authorize(principal, "hq.write")
    with transaction():
        return _update_sku(sku_id, **changes)


def _update_sku(sku_id: int, **changes) -> Sku:
    sku = db.session.get(Sku, sku_id)
    if sku is None:
        raise NotFound("找不到这个 SKU", code="sku_not_found")
    prices = changes.pop("prices", None)
    if "gtin" in changes:
        changes["gtin"] = _gtin(changes["gtin"])
        if db.session.scalar(sa.select(Sku.id).where(Sku.gtin == changes["gtin"], Sku.id != sku_id)):
            raise Conflict("这个条码已经在用", code="sku_taken")
    packing = {key: changes.get(key, getattr(sku, key))
               for key in ("unit", "case_unit", "case_pack", "min_order_quantity")}
    if packing != {key: getattr(sku, key) for key in packing}:
        check_packing(**packing)
        for key in ("unit", "case_unit"):
            if key in changes:
                changes[key] = changes[key].strip()
    for key, value in changes.items():
        setattr(sku, key, value)
    if prices is not None:
        _set_prices(sku, prices)
    db.session.flush()
    return sku


def _set_prices(sku: Sku, prices: dict[int, int]) -> None:
    """Set the SKU's price in fen for each tier given."""
    for tier_id, price_fen in prices.items():
        if db.session.get(PriceTier, tier_id) is None:
            raise NotFound("找不到这个价格等级", code="price_tier_not_found")
        if not isinstance(price_fen, int) or price_fen < 0:
            raise ValidationFailed("价格要用分表示的非负整数", code="invalid_price")
        existing = next((p for p in sku.prices if p.price_tier_id == tier_id), None)
        if existing:
            existing.price_fen = price_fen
        else:
            sku.prices.append(SkuPrice(price_tier_id=tier_id, price_fen=price_fen))
    db.session.flush()
