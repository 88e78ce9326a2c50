"""Consumer verification: genuine or not, product, first verified at, times verified; and, when the phone says
where it is, a diversion alert for HQ if the unit turns up far from the region it was shipped to."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.catalog.models import Product, Sku
from app.codes.models import Code
from app.codes.parse import ScanParseError, grouped, parse_scan
from app.core.clock import now_utc
from app.core.regions import km_to_city, locate_city
from app.core.tx import transaction
from app.extensions import db
from app.scans.models import DiversionAlert

# More checks than this of one unit is what copied labels look like.
SUSPICIOUS_AFTER = 5
# A consumer this far from every centre of the city a unit was shipped to has it outside that city: far enough
# that someone living on the city's edge, or a phone's rough fix, does not raise an alert.
CONSUMER_DIVERSION_KM = 50
# A point farther than this from every city and district centre is not in China (or not a real fix): no alert.
_LOCATE_WITHIN_KM = 150


def verify(text: str, *, lat: float | None = None, lng: float | None = None) -> dict[str, Any]:
    """Check a scanned code for a consumer and count the check; never raises for a bad code.

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
    with transaction():
        code_t = Code.__table__
        row = db.session.execute(
            sa.update(code_t).where(code_t.c.serial == scanned.serial, code_t.c.kind == "unit")
            .values(verify_count=code_t.c.verify_count + 1, last_verified_at=now,
                    first_verified_at=sa.func.coalesce(code_t.c.first_verified_at, now))
            .returning(code_t.c.sku_id, code_t.c.state, code_t.c.verify_count, code_t.c.first_verified_at,
                       code_t.c.sold_at, code_t.c.id, code_t.c.destination_store_id,
                       code_t.c.destination_distributor_id, code_t.c.destination_region)
        ).first()
        if row is not None and lat is not None and lng is not None:
            _alert_if_far(row, lat, lng, now)
    if row is None:
        if db.session.scalar(sa.select(Code.id).where(Code.serial == scanned.serial, Code.kind == "case")):
            return {"genuine": False, "status": "invalid", "reason": "case_code", "serial": scanned.serial,
                    "message": "这是整箱外包装上的箱码，请扫单件商品上的二维码查询"}
        return {"genuine": False, "status": "not_found", "reason": "unknown_code", "serial": scanned.serial,
                "message": "查不到这个码，可能是假货，请谨慎购买"}
    sku_id, state, count, first_at, sold_at = row[:5]
    sku, product_name = db.session.execute(sa.select(Sku, Product.name).join(Product)
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
    return {"genuine": True, "status": "suspicious" if suspicious else "genuine", "reason": None,
            "serial": scanned.serial, "serial_grouped": grouped(scanned.serial), "message": message,
            # What a consumer should see: the product as printed (no internal id, nothing about the store).
            "product": {"name": sku.name, "product_name": product_name, "specification": sku.specification,
                        "gtin": sku.gtin},
            "state": state, "sold": state == "sold", "sold_at": sold_at, "first_verified_at": first_at,
            "times_verified": count, "suspicious": suspicious}


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
