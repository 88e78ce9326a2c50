"""One builder for the scan answer (`app.scans.answers`): every Python site uses it, and the hot path's SQL JSON
(frozen released SQL) has its keys, in its order, with its types."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

from marshmallow import ValidationError

from app.catalog.models import Sku
from app.codes.models import ScanEvent
from app.core.clock import BUSINESS_TZ
from app.extensions import db
from app.scans import hot, messages
from app.scans.answers import ANSWER_FIELDS, build_answer, sku_ref
from miniprogram_api.scans.views import _bad_item
from tests.scans.helpers import codes_in, owner_principal, store

ROOT = Path(__file__).resolve().parents[2]


def _same(a, b, path="answer") -> None:
    """Equal, key for key in the same order, and of the same JSON types all the way down."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{n}]")
    else:
        assert a == b, path


def _builder_for(sold: dict) -> dict:
    """The builder's answer for the sale the hot path made, from what the database recorded of it."""
    event = db.session.get(ScanEvent, sold["event_id"])
    sku = db.session.get(Sku, event.sku_id)
    return build_answer("accepted", request_id=event.request_id, action="sell",
                        message=messages.sold(sku.name, 1, sku.unit, event.on_hand_after), code_state="sold",
                        serial=sold["serial"], sku=sku_ref(sku.id, sku.name, sku.unit, sku.gtin), quantity=1,
                        on_hand=event.on_hand_after, event_id=event.id, store_id=event.store_id)


def _hot_sell(serial: str, store_code: str) -> hot.HotSell:
    principal = owner_principal(store_code)
    return hot.HotSell(user_id=principal.user_id, request_id=uuid.uuid4().hex, serial=serial, gtin=None,
                       store_id=store(store_code).id, at=datetime.now(UTC).replace(microsecond=0))


def test_the_hot_paths_sql_json_is_the_builders_answer(postgres, demo):
    one, many = codes_in("S1", n=2)
    text = hot.sell_one(_hot_sell(one.serial, "S1"), tz=BUSINESS_TZ.key)
    texts = hot.sell_many([_hot_sell(many.serial, "S1")], tz=BUSINESS_TZ.key)
    db.session.remove()
    assert text is not None and list(texts) == [0]
    for sold in (json.loads(text), json.loads(texts[0])):
        assert list(sold) == list(ANSWER_FIELDS)
        _same(sold, _builder_for(sold))


def test_a_refused_batch_item_is_the_builders_answer():
    answer = _bad_item({"request_id": "r1", "action": "sell", "code": 5}, ValidationError({"code": ["不对"]}))
    assert list(answer) == [*ANSWER_FIELDS, "details"]
    _same(answer, build_answer("refused", request_id="r1", action="sell", reason="validation_failed",
                               message=messages.refused("validation_failed"), details={"fields": {"code": ["不对"]}}))


def test_no_python_site_but_the_builder_spells_the_answer():
    spelled = re.compile(r"""["']code_state["']\s*:""")
    sites = [ROOT / "app/scans/services.py", ROOT / "miniprogram_api/scans/views.py", ROOT / "app/scans/stocktake.py",
             *sorted((ROOT / "app/scans").glob("*.py"))]
    found = sorted({str(p.relative_to(ROOT)) for p in sites
                    if p.name != "answers.py" and spelled.search(p.read_text(encoding="utf-8"))})
    assert found == []
