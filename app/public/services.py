"""Consumer verification: genuine or not, product, first verified at, times verified."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.catalog.models import Product, Sku
from app.codes.models import Code
from app.codes.parse import ScanParseError, grouped, parse_scan
from app.core.clock import now_utc
from app.core.tx import transaction
from app.extensions import db

# More checks than this of one unit is what copied labels look like.
SUSPICIOUS_AFTER = 5


def verify(text: str) -> dict[str, Any]:
    """Check a scanned code for a consumer and count the check; never raises for a bad code."""
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
                       code_t.c.sold_at)
        ).first()
    if row is None:
        return {"genuine": False, "status": "not_found", "reason": "unknown_code", "serial": scanned.serial,
                "message": "查不到这个码，可能是假货，请谨慎购买"}
    sku_id, state, count, first_at, sold_at = row
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
            "product": {"sku_id": sku.id, "name": sku.name, "product_name": product_name,
                        "specification": sku.specification, "gtin": sku.gtin},
            "state": state, "sold": state == "sold", "sold_at": sold_at, "first_verified_at": first_at,
            "times_verified": count, "suspicious": suspicious}
