"""The one short Chinese sentence beside every scan answer, for large type or reading aloud."""

from __future__ import annotations

from datetime import datetime

from app.core.clock import local_text

REFUSALS = {
    "unknown_code": "查不到这个码，可能是假码，请核对",
    "gtin_mismatch": "码上的商品条码和商品对不上，可能是假码",
    "not_shipped": "这件商品没有发往本店的记录，不能操作",
    "not_for_this_store": "这件商品不是发给本店的，请联系分销商",
    "not_received": "这件商品还没扫码入库，请先入库再售出",
    "already_sold": "这件商品已经售出，不能入库",
    "not_sold": "这件商品还没有售出，不能退货",
    "sold_elsewhere": "这件商品不是在本店售出的，不能在本店退货",
    "voided": "这个码已作废，请联系总部",
    "case_not_sellable": "这是箱码，售出请扫单件商品上的码",
    "case_empty": "这个箱码里没有可入库的商品",
    "serial_required": "这个商品要扫每一件上的二维码",
    "unknown_gtin": "查不到这个商品条码",
    "insufficient_stock": "店内库存不够，不能售出这么多",
    "nothing_in_transit": "没有发往本店、待入库的这个商品",
    "diverted": "这件商品不属于本店的进货，总部规定不能售出",
    "out_of_scope": "只能为自己的门店扫码",
    "validation_failed": "扫码内容不完整",
    "busy": "系统正忙，这一条没有处理，请再扫一次",
    "missing": "这件商品盘点时登记为丢失，请联系总部",
}


def refused(reason: str, default: str | None = None) -> str:
    return REFUSALS.get(reason, default or "无法处理这个码")


# Also the template of the answers PostgreSQL builds on the hot sell path (`app.scans.hot`).
SOLD = "售出成功：{name} {quantity} {unit}，店内还剩 {on_hand} {unit}"


def sold(name: str, quantity: int, unit: str, on_hand: int) -> str:
    return SOLD.format(name=name, quantity=quantity, unit=unit, on_hand=on_hand)


def received(name: str, quantity: int, unit: str, on_hand: int) -> str:
    return f"入库成功：{name} {quantity} {unit}，店内现有 {on_hand} {unit}"


def returned(name: str, quantity: int, unit: str, on_hand: int) -> str:
    return f"退货成功：{name} {quantity} {unit}，店内现有 {on_hand} {unit}"


TIME_NOTE = "手机时间不准，已按收到的时间记账"


def with_time_note(message: str) -> str:
    """A scan recorded at the server's time, because the phone's clock cannot be right, says so."""
    return f"{message}（{TIME_NOTE}）"


def found(name: str, unit: str, on_hand: int) -> str:
    return f"找回成功：{name} 1 {unit} 已重新入库，店内现有 {on_hand} {unit}"


def already_sold(at: datetime | None, store_name: str | None, here: bool) -> str:
    where = "本店" if here else (store_name or "别的门店")
    when = local_text(at) if at else ""
    return f"这件商品已在 {when} 于{where}售出".replace("  ", " ")


def already_received(name: str) -> str:
    return f"{name} 已经入库过了，不用重复扫"


def already_returned(name: str) -> str:
    return f"{name} 已经退货入库过了"


def undone(action: str, name: str) -> str:
    verb = {"sell": "售出", "receive": "入库", "return": "退货"}.get(action, "扫码")
    return f"已撤销：{name} 的{verb}"


def diversion_alert(expected: str | None) -> str:
    return f"注意：这件商品原本发往{expected or '别的门店'}，已报告总部"


def counted(lines: list[dict]) -> str:
    """The sentence of a stocktake: what the shelf holds now and how it differed from the books."""
    if len(lines) == 1:
        line = lines[0]
        name, unit = line.get("name", ""), line.get("unit", "")
        text = f"盘点完成：{name} 现有 {line['on_hand']} {unit}"
        if line["delta"] > 0:
            text += f"，比账上多 {line['delta']} {unit}"
        elif line["delta"] < 0:
            text += f"，比账上少 {-line['delta']} {unit}"
        else:
            text += "，和账上一样"
        if line.get("missing_serials"):
            text += f"，{len(line['missing_serials'])} 件没找到，已登记为丢失"
        return text
    changed = sum(1 for line in lines if line["delta"])
    if not changed:
        return f"盘点完成：{len(lines)} 种商品都和账上一样"
    return f"盘点完成：{len(lines)} 种商品，{changed} 种和账上不一样，已按盘点数更正"


def adjusted(name: str, unit: str, delta: int, on_hand: int) -> str:
    change = f"增加 {delta} {unit}" if delta > 0 else f"减少 {-delta} {unit}"
    return f"调整成功：{name} {change}，店内现有 {on_hand} {unit}"
