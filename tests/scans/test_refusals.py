"""The refusal table: every reason a scan can be refused for, at the service level, on the real database.

Each row arranges what its refusal needs on the demo (S1 and S2 have units and cases in stock, S1 has cases on
their way to it), then calls `scan`, `scan_batch` or `undo_scan` with a Principal, as the edges do, and checks the
reason code and the exact sentence a store owner hears. A refusal moves no stock and records no scan event.
The demo is seeded once for the module; every row takes codes no row before it has touched.
"""

from __future__ import annotations

import ast
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import current_app

from app.accounts.models import User
from app.accounts.roles import DISTRIBUTOR_STAFF
from app.catalog.gtin import make_gtin
from app.catalog.models import Sku
from app.channel.models import Partner
from app.codes.models import Code, ScanEvent
from app.codes.parse import code_url, new_serial
from app.core.clock import now_utc
from app.core.security import Binding, Principal
from app.core.tx import transaction
from app.errors import AppError
from app.extensions import db
from app.inventory.models import StockMovement
from app.scans import messages
from app.scans.services import ScanInput, scan, scan_batch, undo_scan
from tests.helpers import clear_tables
from tests.scans.helpers import on_hand, owner_principal, store

ROOT = Path(__file__).resolve().parent.parent.parent
URL = "https://q.example.com"

# Refusals the edge makes before a service is called (a batch item whose fields do not load); tested over HTTP.
EDGE_ONLY = {"validation_failed": "tests/scans/test_scan_api.py::test_batch_each_item_on_its_own"}


@dataclass(frozen=True)
class Refusal:
    name: str
    reason: str
    sentence: str
    # Arranges the case and returns the call that is refused (an answer, or an AppError raised).
    arrange: Callable[[pytest.MonkeyPatch], Callable[[], Any]]


# --- the demo's people and codes ---------------------------------------------------------------------------------

def s1() -> Principal:
    return owner_principal("S1")


def s2() -> Principal:
    return owner_principal("S2", "demo_store_owner_2")


def distributor() -> Principal:
    uid = db.session.scalar(sa.select(User.id).where(User.openid == "demo_distributor"))
    d1 = db.session.scalar(sa.select(Partner).where(Partner.code == "D1"))
    return Principal(user_id=uid, kind="mp", bindings=(Binding(role=DISTRIBUTOR_STAFF, partner_id=d1.id,
                                                               partner_path=d1.path),))


def item(code: str, action: str = "sell", **extra: Any) -> ScanInput:
    return ScanInput(request_id=uuid.uuid4().hex, code=code, action=action, scanned_at=now_utc(), **extra)


def a_code(*, state: str, kind: str = "unit", at: str | None = None, to: str | None = None) -> Code:
    """A code in this state no earlier row has used (rows change the codes they use, or skip by id)."""
    stmt = sa.select(Code).where(Code.state == state, Code.kind == kind).order_by(Code.id.desc())
    if at is not None:
        stmt = stmt.where(Code.store_id == store(at).id)
    if to is not None:
        stmt = stmt.where(Code.destination_store_id == store(to).id)
    code = db.session.scalars(stmt.where(Code.id.not_in(_used))).first()
    assert code is not None, (state, kind, at, to)
    _used.add(code.id)
    return code


_used: set[int] = set()


def sku(code: str) -> Sku:
    return db.session.scalar(sa.select(Sku).where(Sku.code == code))


def accepted(answer: Any) -> Any:
    assert answer["status"] == "accepted", answer
    return answer


def set_code(code: Code, **values: Any) -> None:
    with transaction():
        db.session.execute(sa.update(Code).where(Code.id == code.id).values(**values))


def empty_case_on_its_way_to(store_code: str) -> str:
    serial = new_serial()
    with transaction():
        case = Code(serial=serial, kind="case", sku_id=sku("MILK250").id, state="in_transit",
                    destination_store_id=store(store_code).id)
        db.session.add(case)
        db.session.flush()
        _used.add(case.id)  # no other row may take it for a case with units in it
    return serial


# --- the rows ----------------------------------------------------------------------------------------------------

def _unknown_code(mp):
    return lambda: scan(s1(), item(new_serial()))


def _gtin_mismatch(mp):
    code = a_code(state="in_store", at="S1")
    other = sku("YOG200" if code.sku_id != sku("YOG200").id else "MILK250")
    return lambda: scan(s1(), item(code_url(URL, other.gtin, code.serial)))


def _not_shipped(mp):
    code = a_code(state="in_warehouse")
    return lambda: scan(s1(), item(code.serial))


def _not_for_this_store(mp):
    code = a_code(state="in_transit", to="S1")
    return lambda: scan(s2(), item(code.serial, "receive"))


def _not_received(mp):
    code = a_code(state="in_transit", to="S1")
    return lambda: scan(s1(), item(code.serial))


def _already_sold_on_receive(mp):
    code = a_code(state="in_store", at="S1")
    accepted(scan(s1(), item(code.serial)))
    return lambda: scan(s1(), item(code.serial, "receive"))


def _not_sold(mp):
    code = a_code(state="in_store", at="S1")
    return lambda: scan(s1(), item(code.serial, "return"))


def _sold_elsewhere(mp):
    code = a_code(state="in_store", at="S2")
    accepted(scan(s2(), item(code.serial)))
    return lambda: scan(s1(), item(code.serial, "return"))


def _voided(mp):
    code = a_code(state="in_store", at="S1")
    set_code(code, state="voided")
    return lambda: scan(s1(), item(code.serial))


def _case_not_sellable(mp):
    case = a_code(state="in_store", kind="case", at="S1")
    return lambda: scan(s1(), item(case.serial))


def _case_not_returnable(mp):
    case = a_code(state="in_store", kind="case", at="S1")
    return lambda: scan(s1(), item(case.serial, "return"))


def _case_empty(mp):
    serial = empty_case_on_its_way_to("S1")
    return lambda: scan(s1(), item(serial, "receive"))


def _serial_required(mp):
    return lambda: scan(s1(), item(sku("MILK250").gtin, quantity=1))


def _unknown_gtin(mp):
    return lambda: scan(s1(), item(make_gtin("690999999999"), quantity=1))


def _insufficient_stock(mp):
    biscuits = sku("BISC")
    return lambda: scan(s1(), item(biscuits.gtin, quantity=on_hand("S1", biscuits.id) + 1))


def _nothing_in_transit(mp):
    return lambda: scan(s2(), item(sku("BISC").gtin, "receive", quantity=1))


def _diverted(mp):
    mp.setitem(current_app.config, "DIVERSION_POLICY", "refuse")
    code = a_code(state="in_store", at="S2")
    return lambda: scan(s1(), item(code.serial))


def _missing_elsewhere(mp):
    """A unit a stocktake at S2 recorded missing turns up at S1: refused, HQ must look into it."""
    code = a_code(state="in_store", at="S2")
    set_code(code, state="missing")
    return lambda: scan(s1(), item(code.serial))


def _out_of_scope_single(mp):
    code = a_code(state="in_store", at="S2")
    return lambda: scan(s1(), item(code.serial, store_id=store("S2").id))


def _out_of_scope_in_a_batch(mp):
    code = a_code(state="in_store", at="S2")
    return lambda: scan_batch(s1(), [item(code.serial, store_id=store("S2").id)])[0]


def _store_required_single(mp):
    return lambda: scan(distributor(), item(new_serial()))


def _store_required_in_a_batch(mp):
    return lambda: scan_batch(distributor(), [item(new_serial())])[0]


def _store_not_found(mp):
    return lambda: scan(distributor(), item(new_serial(), store_id=10**9))


def _duplicate_request_id(mp):
    first, second = item(new_serial()), item(new_serial())
    second.request_id = first.request_id
    return lambda: scan_batch(s1(), [first, second])[1]


def _parse(text: str) -> Callable[[pytest.MonkeyPatch], Callable[[], Any]]:
    return lambda mp: lambda: scan(s1(), item(text))


def _bad_check_character() -> str:
    serial = new_serial()
    return serial[:-1] + ("A" if serial[-1] != "A" else "B")


def _sold_by_s1() -> tuple[Code, int]:
    code = a_code(state="in_store", at="S1")
    return code, accepted(scan(s1(), item(code.serial)))["event_id"]


def _undo_not_found(mp):
    return lambda: undo_scan(s1(), 10**12)


def _undo_of_an_undo(mp):
    _, sold = _sold_by_s1()
    undo = accepted(undo_scan(s1(), sold))["event_id"]
    return lambda: undo_scan(s1(), undo)


def _undo_of_a_unit_inside_a_case(mp):
    case = a_code(state="in_transit", kind="case", to="S1")
    head = accepted(scan(s1(), item(case.serial, "receive")))["event_id"]
    child = db.session.scalar(sa.select(ScanEvent.id).where(ScanEvent.parent_event_id == head).limit(1))
    return lambda: undo_scan(s1(), child)


def _undo_twice(mp):
    _, sold = _sold_by_s1()
    accepted(undo_scan(s1(), sold))
    return lambda: undo_scan(s1(), sold)


def _undo_too_late(mp):
    _, sold = _sold_by_s1()
    with transaction():
        db.session.execute(sa.update(ScanEvent).where(ScanEvent.id == sold).values(
            recorded_at=now_utc() - timedelta(minutes=11)))
    return lambda: undo_scan(s1(), sold)


def _undo_after_the_stock_moved_on(mp):
    biscuits = sku("BISC")
    returned = accepted(scan(s1(), item(biscuits.gtin, "return", quantity=2)))["event_id"]
    accepted(scan(s1(), item(biscuits.gtin, quantity=on_hand("S1", biscuits.id))))
    return lambda: undo_scan(s1(), returned)


def _undo_after_the_unit_was_scanned_again(mp):
    code, sold = _sold_by_s1()
    accepted(scan(s1(), item(code.serial, "return")))
    return lambda: undo_scan(s1(), sold)


def _busy_item_in_a_batch(mp):
    """The database keeps aborting the item for a deadlock, past every retry: the item is answered, not a 500."""
    import app.core.retry
    from app.scans import services

    class _Deadlock(Exception):
        sqlstate = "40P01"

    def aborted(*_a, **_kw):
        raise sa.exc.OperationalError("UPDATE stock_levels ...", {}, _Deadlock("deadlock detected"))

    code, _ = _sold_by_s1()
    mp.setattr(services, "_scan_once", aborted)
    mp.setattr(app.core.retry, "_PAUSE", 0)
    return lambda: scan_batch(s1(), [item(code.serial, "return")])[0]


ROWS = [
    Refusal("unknown code", "unknown_code", "查不到这个码，可能是假码，请核对", _unknown_code),
    Refusal("GTIN beside the serial is another SKU's", "gtin_mismatch", "码上的商品条码和商品对不上，可能是假码",
            _gtin_mismatch),
    Refusal("sell a unit still in the warehouse", "not_shipped", "这件商品没有发往本店的记录，不能操作", _not_shipped),
    Refusal("receive another store's delivery", "not_for_this_store", "这件商品不是发给本店的，请联系分销商",
            _not_for_this_store),
    Refusal("sell before receiving", "not_received", "这件商品还没扫码入库，请先入库再售出", _not_received),
    Refusal("receive a sold unit", "already_sold", "这件商品已经售出，不能入库", _already_sold_on_receive),
    Refusal("return an unsold unit", "not_sold", "这件商品还没有售出，不能退货", _not_sold),
    Refusal("return what another store sold", "sold_elsewhere", "这件商品不是在本店售出的，不能在本店退货",
            _sold_elsewhere),
    Refusal("voided code", "voided", "这个码已作废，请联系总部", _voided),
    Refusal("sell a case", "case_not_sellable", "这是箱码，售出请扫单件商品上的码", _case_not_sellable),
    Refusal("return a case", "case_not_sellable", "这是箱码，售出请扫单件商品上的码", _case_not_returnable),
    Refusal("receive an empty case", "case_empty", "这个箱码里没有可入库的商品", _case_empty),
    Refusal("GTIN of a serialized SKU", "serial_required", "这个商品要扫每一件上的二维码", _serial_required),
    Refusal("GTIN not in the catalog", "unknown_gtin", "查不到这个商品条码", _unknown_gtin),
    Refusal("sell more than on hand", "insufficient_stock", "店内库存不够，不能售出这么多", _insufficient_stock),
    Refusal("receive by GTIN with nothing shipped", "nothing_in_transit", "没有发往本店、待入库的这个商品",
            _nothing_in_transit),
    Refusal("diverted unit under the refuse policy", "diverted", "这件商品不属于本店的进货，总部规定不能售出",
            _diverted),
    Refusal("sell a unit another store's stocktake missed", "missing", "这件商品盘点时登记为丢失，请联系总部",
            _missing_elsewhere),
    Refusal("another store (one scan)", "out_of_scope", "这不在你的权限范围内", _out_of_scope_single),
    Refusal("another store (batch)", "out_of_scope", "只能为自己的门店扫码", _out_of_scope_in_a_batch),
    Refusal("no store (one scan)", "store_required", "请指定门店", _store_required_single),
    Refusal("no store (batch)", "store_required", "请指定门店", _store_required_in_a_batch),
    Refusal("no such store", "store_not_found", "找不到这家门店", _store_not_found),
    Refusal("a batch item the database keeps aborting", "busy", "系统正忙，这一条没有处理，请再扫一次",
            _busy_item_in_a_batch),
    Refusal("request id twice in a batch", "duplicate_request_id", "同一批里请求号重复了", _duplicate_request_id),
    # What the camera read is not one of our codes (app/codes/parse.py words these).
    Refusal("blank", "empty_code", "没有扫到内容，请重新扫码", _parse("   ")),
    Refusal("a page of text", "code_too_long", "扫到的内容太长，不是本品牌的商品码", _parse("码" * 600)),
    Refusal("not our alphabet", "not_a_code", "这不是本品牌的商品码", _parse("你好")),
    Refusal("digits that are no GTIN", "not_a_code", "这串数字不是商品条码，也不是本品牌的商品码", _parse("12345")),
    Refusal("serial cut short", "serial_too_short", "码太短了，可能没扫全，请重新扫码", _parse("ABCDEFG")),
    Refusal("serial too long", "serial_too_long", "码太长了，不是本品牌的商品码", _parse("ABCDEFGHJKMNPQRSTV")),
    Refusal("wrong check character", "bad_check_character", "码的校验位不对，可能输错了或是假码",
            lambda mp: (lambda text: lambda: scan(s1(), item(text)))(_bad_check_character())),
    Refusal("someone else's URL", "unknown_url", "这个链接不是本品牌的商品码", _parse("https://example.com/p/1")),
    Refusal("bad GTIN in the URL", "bad_gtin", "商品条码的校验位不对", _parse(f"{URL}/01/06901234567890/21/X")),
    Refusal("bad GTIN scanned alone", "bad_gtin", "商品条码的校验位不对，请重新扫码", _parse("6901234567890")),
    # Undo.
    Refusal("undo a scan that is not yours", "scan_not_found", "找不到你的这次扫码", _undo_not_found),
    Refusal("undo an undo", "not_undoable", "这次扫码不能撤销", _undo_of_an_undo),
    Refusal("undo one unit of a case", "not_undoable", "这次扫码不能撤销", _undo_of_a_unit_inside_a_case),
    Refusal("undo twice", "already_undone", "这次扫码已经撤销过了", _undo_twice),
    Refusal("undo after the window", "undo_window_passed", "只能撤销 10 分钟内的扫码", _undo_too_late),
    Refusal("undo a return whose stock was sold since", "not_undoable", "店内库存已经变了，不能撤销这次扫码",
            _undo_after_the_stock_moved_on),
    Refusal("undo a sell of a unit returned since", "not_undoable", "这件商品后来又被扫过，不能撤销这次扫码",
            _undo_after_the_unit_was_scanned_again),
]


@pytest.fixture(scope="module")
def world(app):
    """The full demo, seeded once for the module."""
    from app.demo.seed import seed

    with app.app_context():
        clear_tables()
        seed()
        db.session.remove()
    _used.clear()
    yield
    with app.app_context():
        clear_tables()


def _ledger() -> tuple[int, int]:
    db.session.rollback()
    return (db.session.scalar(sa.select(sa.func.count(StockMovement.id))),
            db.session.scalar(sa.select(sa.func.count(ScanEvent.id))))


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_refusal(world, app_ctx, monkeypatch, row):
    call = row.arrange(monkeypatch)
    before = _ledger()
    try:
        answer = call()
    except AppError as exc:
        got = (exc.code, exc.message)
    else:
        assert answer["status"] == "refused", answer
        got = (answer["reason"], answer["message"])
    assert got == (row.reason, row.sentence)
    assert _ledger() == before, "a refusal moved stock or recorded a scan event"
    db.session.remove()


def test_the_table_agrees_with_messages_py():
    """Each reason messages.py words is in the table with the same sentence (or refused at the edge)."""
    table = {(r.reason, r.sentence) for r in ROWS}
    missing = {reason for reason in messages.REFUSALS if reason not in EDGE_ONLY
               and (reason, messages.refused(reason)) not in table}
    assert missing == set()


def _reasons_in(path: Path) -> set[str]:
    """The reason codes a module refuses with: `_Refused("…")`, `ScanParseError("…")`, `code="…"` of a raised
    error, and `reason="…"` of a refused answer."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            found |= {kw.value.value for kw in node.exc.keywords
                      if kw.arg == "code" and isinstance(kw.value, ast.Constant)}
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        first = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
        if name in ("_Refused", "ScanParseError") and isinstance(first, str):
            found.add(first)
        if name == "_answer" and first == "refused":
            found |= {kw.value.value for kw in node.keywords
                      if kw.arg == "reason" and isinstance(kw.value, ast.Constant)}
    return found


def test_the_table_covers_every_reason_in_the_code():
    in_code = (_reasons_in(ROOT / "app/scans/services.py") | _reasons_in(ROOT / "app/codes/parse.py")
               | set(messages.REFUSALS)) - set(EDGE_ONLY)
    assert in_code - {r.reason for r in ROWS} == set()


def test_edge_only_refusals_are_tested_over_http():
    for reason, test in EDGE_ONLY.items():
        path, name = test.split("::")
        text = (ROOT / path).read_text(encoding="utf-8")
        body = text[text.index(f"def {name}("):]
        body = body[:body.find("\ndef ", 1) if "\ndef " in body[1:] else None]
        assert f'"{reason}"' in body and f'"{messages.refused(reason)}"' in body, (reason, test)
