"""Consumer verification: genuine or not, product, first verified at, times verified; and, when the phone says
where it is, a diversion alert for HQ if the unit turns up far from the region it was shipped to."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.catalog.models import Product, Sku
from app.channel.models import Store
from app.codes.models import Code
from app.codes.parse import ScanParseError, grouped, parse_scan
from app.core.clock import now_utc
from app.core.regions import km_to_city, locate_city, region_name
from app.core.security import Principal, authorize_action
from app.core.tx import transaction
from app.errors import ValidationFailed
from app.extensions import db
from app.scans.models import DiversionAlert
from app.verification.models import ConsumerSettings, VerifyViewer

# A phone's checks of one unit count once in this window (a reload, or a second look, is not another check).
REPEAT_WINDOW = timedelta(hours=24)
# More checks than this of one unit is what copied labels look like.
SUSPICIOUS_AFTER = 5
# A consumer this far from every centre of the city a unit was shipped to has it outside that city: far enough
# that someone living on the city's edge, or a phone's rough fix, does not raise an alert.
CONSUMER_DIVERSION_KM = 50
# A point farther than this from every city and district centre is not in China (or not a real fix): no alert.
_LOCATE_WITHIN_KM = 150


def verify(text: str, *, lat: float | None = None, lng: float | None = None,
           viewer: str | None = None) -> dict[str, Any]:
    """Check a scanned code for a consumer and count the check; never raises for a bad code.

    `viewer` (the phone, as the hash of its first-party cookie): a check of the same unit by the same phone within
    REPEAT_WINDOW of its last counted one (a reload) is answered the same but not counted again.
    `lat`/`lng` (optional, from the phone) place the check: far outside the region the unit was shipped to, HQ
    gets a diversion alert (once per unit and city). The consumer's answer does not change.
    """
    try:
        scanned = parse_scan(text)
    except ScanParseError as exc:
        return {"genuine": False, "status": "invalid", "reason": exc.code, "message": exc.message}
    if not scanned.serial:
        return {"genuine": False, "status": "invalid", "reason": "not_a_serial",
                "message": "这是商品条码，不是防伪码，请扫商品上的二维码"}
    now = now_utc()
    code_t = Code.__table__
    columns = (code_t.c.sku_id, code_t.c.state, code_t.c.verify_count, code_t.c.first_verified_at,
               code_t.c.sold_at, code_t.c.id, code_t.c.destination_store_id, code_t.c.destination_distributor_id,
               code_t.c.destination_region, code_t.c.store_id)
    with transaction():
        code_id = db.session.scalar(sa.select(code_t.c.id).where(code_t.c.serial == scanned.serial,
                                                                 code_t.c.kind == "unit"))
        row = None
        if code_id is not None and (viewer is None or _counts(code_id, viewer, now)):
            row = db.session.execute(
                sa.update(code_t).where(code_t.c.id == code_id)
                .values(verify_count=code_t.c.verify_count + 1, last_verified_at=now,
                        first_verified_at=sa.func.coalesce(code_t.c.first_verified_at, now))
                .returning(*columns)).first()
        elif code_id is not None:
            row = db.session.execute(sa.select(*columns).where(code_t.c.id == code_id)).first()
        if row is not None and lat is not None and lng is not None:
            _alert_if_far(row, lat, lng, now)
    if row is None:
        if db.session.scalar(sa.select(Code.id).where(Code.serial == scanned.serial, Code.kind == "case")):
            return {"genuine": False, "status": "invalid", "reason": "case_code", "serial": scanned.serial,
                    "message": "这是整箱外包装上的箱码，请扫单件商品上的二维码查询"}
        return {"genuine": False, "status": "not_found", "reason": "unknown_code", "serial": scanned.serial,
                "message": "查不到这个码，可能是假货，请谨慎购买"}
    sku_id, state, count, first_at, sold_at = row[:5]
    sku, product_name, brand = db.session.execute(sa.select(Sku, Product.name, Product.brand).join(Product)
                                                  .where(Sku.id == sku_id)).one()
    if scanned.gtin and scanned.gtin != sku.gtin:
        return {"genuine": False, "status": "mismatch", "reason": "gtin_mismatch", "serial": scanned.serial,
                "message": "码和商品对不上，可能是假货"}
    suspicious = count > SUSPICIOUS_AFTER
    if suspicious:
        message = f"正品码，但已被查询 {count} 次，可能被复制，请谨慎"
    elif count == 1:
        message = "正品：这是第一次查询"
    else:
        message = f"正品：已被查询 {count} 次"
    sold = state == "sold"
    return {"genuine": True, "status": "suspicious" if suspicious else "genuine", "reason": None,
            "serial": scanned.serial, "serial_grouped": grouped(scanned.serial), "message": message,
            # What a consumer should see: the product as printed (no internal id, nothing about the store but
            # the city it is in).
            "product": {"name": sku.name, "product_name": product_name, "brand": brand or None,
                        "specification": sku.specification, "gtin": sku.gtin},
            "state": state, "sold": sold, "sold_at": sold_at,
            "sold_city": _city_of_store(row.store_id) if sold else None,
            "first_verified_at": first_at, "times_verified": count, "suspicious": suspicious}


def _counts(code_id: int, viewer: str, now) -> bool:
    """Whether this phone's check of this unit counts: its first, or the first after REPEAT_WINDOW. One statement
    (insert, or move the window on only when it has passed), so two reloads at once count at most once."""
    t = VerifyViewer.__table__
    insert = pg_insert(t) if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert(t)
    stmt = (insert.values(code_id=code_id, viewer=viewer, counted_at=now)
            .on_conflict_do_update(index_elements=[t.c.code_id, t.c.viewer], set_={"counted_at": now},
                                   where=t.c.counted_at <= now - REPEAT_WINDOW)
            .returning(t.c.code_id))
    return db.session.execute(stmt).first() is not None


def _city_of_store(store_id: int | None) -> str | None:
    """The name of the city a store is in (the consumer learns the city, never the store)."""
    if store_id is None:
        return None
    city = db.session.scalar(sa.select(Store.city_code).where(Store.id == store_id))
    return region_name(city) if city else None


def _alert_if_far(code: sa.Row, lat: float, lng: float, now) -> None:
    """A consumer checked this unit far from the city it was shipped to: tell HQ, once per unit and city."""
    if not code.destination_region:
        return
    located = locate_city(lat, lng)
    if located is None or located[1] > _LOCATE_WITHIN_KM or located[0] == code.destination_region[:4] + "00":
        return
    away = km_to_city(lat, lng, code.destination_region[:4] + "00")
    if away is not None and away <= CONSUMER_DIVERSION_KM:
        return
    city = located[0]
    seen = db.session.scalar(sa.select(DiversionAlert.id).where(
        DiversionAlert.code_id == code.id, DiversionAlert.source == "consumer", DiversionAlert.actual_region == city))
    if seen is None:
        db.session.add(DiversionAlert(
            code_id=code.id, sku_id=code.sku_id, source="consumer", expected_store_id=code.destination_store_id,
            expected_distributor_id=code.destination_distributor_id, expected_region=code.destination_region,
            actual_region=city, policy="alert", created_at=now))


BRAND_NAME_MAX, SERVICE_CONTACT_MAX = 64, 200


def consumer_settings() -> dict[str, str]:
    """What the consumer page says about the brand: HQ's setting, else the configured defaults."""
    row = db.session.get(ConsumerSettings, 1)
    if row is not None:
        return {"brand_name": row.brand_name, "service_contact": row.service_contact}
    return {"brand_name": current_app.config["BRAND_NAME"],
            "service_contact": current_app.config["BRAND_SERVICE_CONTACT"]}


def set_consumer_settings(principal: Principal, *, brand_name: str, service_contact: str) -> dict[str, str]:
    """HQ sets the brand name (for products without their own) and the service contact the consumer page shows."""
    authorize_action(principal, "hq.write")
    values = {"brand_name": (brand_name or "").strip(), "service_contact": (service_contact or "").strip()}
    problems = {}
    for key, most, label in (("brand_name", BRAND_NAME_MAX, "品牌名称"), ("service_contact", SERVICE_CONTACT_MAX,
                                                                        "客服联系方式")):
        if not values[key]:
            problems[key] = [f"请填写{label}"]
        elif len(values[key]) > most:
            problems[key] = [f"{label}最多 {most} 个字"]
    if problems:
        raise ValidationFailed("填写的内容有误", code="bad_consumer_settings", details={"fields": problems})
    with transaction():
        row = db.session.get(ConsumerSettings, 1) or ConsumerSettings(id=1)
        row.brand_name, row.service_contact = values["brand_name"], values["service_contact"]
        row.updated_by_id, row.updated_at = principal.user_id, now_utc()
        db.session.add(row)
    return values

