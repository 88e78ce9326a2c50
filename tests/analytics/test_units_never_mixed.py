"""Totals never add different units together (issue 14, part 3): on the demo (milk and tea in 提, yoghurt in 组,
biscuits in 袋) no page or answer shows one number summing a 提 and a 袋. Where several units meet, the quantity
is per unit ("120 提 · 30 袋"); where one total is needed (a chart's bar, a change) it is in fen."""

from __future__ import annotations

import csv
import io
import re

import sqlalchemy as sa

from app.catalog.models import Sku
from app.extensions import db
from app.inventory.models import StockLevel, Warehouse
from tests.conftest import hq_login

HQ = "/api/hq/v1"


def login(client):
    """Into the console as HQ's admin."""
    html = client.get("/hq/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    return client.post("/hq/login", data={"username": "admin", "password": "admin", "csrf": csrf})


def _units(app) -> dict[int, str]:
    with app.app_context():
        out = dict(db.session.execute(sa.select(Sku.id, Sku.unit)).all())
        db.session.remove()
    return out


def _mixed(groups: list[dict]) -> bool:
    return len({g["unit"] for g in groups}) > 1


def test_the_charts_draw_yuan_where_units_mix_and_units_where_they_do_not(app, client, demo):
    assert login(client).status_code == 302
    html = client.get("/hq/").get_data(as_text=True)
    charts = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(charts) == 4
    trend, skus, provinces, cities = charts
    # The daily trend and the regions mix 提, 组 and 袋: drawn as the amount, each bar's text in yuan.
    assert "（元）" in trend and "元" in provinces and "元" in cities
    for svg in (provinces, cities):
        texts = re.findall(r'<text x="[\d.]+" y="[\d.]+" font-size="12" fill="#374151">([^<]+)</text>', svg)
        assert texts and all(t.startswith("¥") for t in texts), texts
    # Bars of single SKUs are each in one unit... but together they mix: yuan as well.
    assert "¥" in skus
    # One SKU's page: one unit everywhere, so the chart draws units named with their unit.
    milk = next(k for k, u in _units(app).items() if u == "提")
    html = client.get(f"/hq/sell-through?group_by=city&sku_id={milk}").get_data(as_text=True)
    svg = re.search(r"<svg.*?</svg>", html, flags=re.S).group(0)
    assert "¥" not in svg and " 提<" in svg
    html = client.get(f"/hq/sell-through?group_by=day&sku_id={milk}").get_data(as_text=True)
    assert "（提）" in re.search(r"<svg.*?</svg>", html, flags=re.S).group(0)


def test_totals_and_rows_change_in_fen_when_units_mix(app, client, demo):
    hq = hq_login(client)
    body = client.get(f"{HQ}/overview", headers=hq).get_json()
    tot = body["totals"]
    assert _mixed(tot["units_by_unit"]) and tot["units_change_pct"] is None
    for row in body["top_cities"]:
        if _mixed(row["units_by_unit"] + row["previous_units_by_unit"]) and row["previous_amount_fen"]:
            expected = round((row["amount_fen"] - row["previous_amount_fen"]) * 100.0 / row["previous_amount_fen"], 1)
            assert row["change_pct"] == expected
    milk = next(k for k, u in _units(app).items() if u == "提")
    one = client.get(f"{HQ}/overview?sku_id={milk}", headers=hq).get_json()["totals"]
    assert [g["unit"] for g in one["units_by_unit"]] == ["提"]
    if one["previous_units"]:
        assert one["units_change_pct"] is not None


def test_slow_stores_are_per_unit(app, client, demo):
    hq = hq_login(client)
    items = client.get(f"{HQ}/slow-stores", headers=hq).get_json()["items"]
    assert items
    mixed = [r for r in items if _mixed(r["on_hand_by_unit"])]
    assert mixed, items
    with app.app_context():
        from app.channel.models import Store

        for r in mixed:
            loc = db.session.get(Store, r["store_id"]).location_id
            per_unit: dict[str, int] = {}
            for unit, n in db.session.execute(sa.select(Sku.unit, StockLevel.on_hand).join(Sku)
                                              .where(StockLevel.location_id == loc, StockLevel.on_hand > 0)):
                per_unit[unit] = per_unit.get(unit, 0) + n
            assert {g["unit"]: g["quantity"] for g in r["on_hand_by_unit"]} == per_unit
        db.session.remove()
    # The page and the export write the stock per unit, never the mixed sum.
    assert login(client).status_code == 302
    html = client.get("/hq/store-stock").get_data(as_text=True)
    slow = html[html.index("滞销门店"):]
    r = mixed[0]
    text = " · ".join(f"{g['quantity']:,} {g['unit']}" for g in r["on_hand_by_unit"])
    assert text in slow
    assert f'<td class="n">{r["on_hand"]:,}</td>' not in slow
    rows = list(csv.reader(io.StringIO(client.get(f"{HQ}/slow-stores?format=csv", headers=hq)
                                       .get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][3] == "库存（按单位）"
    assert any("提" in row[3] and "袋" in row[3] for row in rows[1:]), rows


def test_the_store_stock_rows_name_their_unit(app, client, demo):
    assert login(client).status_code == 302
    html = client.get("/hq/store-stock").get_data(as_text=True)
    table = html[:html.index("滞销门店")]
    assert re.search(r'<td class="n">[\d,]+ 提</td>', table) and re.search(r'<td class="n">[\d,]+ 袋</td>', table)
    hq = hq_login(client)
    items = client.get(f"{HQ}/store-stock", headers=hq).get_json()["items"]
    units = _units(app)
    assert items and all(r["unit"] == units[r["sku_id"]] for r in items)


def test_the_sell_in_table_is_per_unit(app, client, demo):
    hq = hq_login(client)
    items = client.get(f"{HQ}/sell-in?group_by=city", headers=hq).get_json()["items"]
    mixed = [r for r in items if _mixed(r["sell_in_by_unit"] + r["sell_through_by_unit"])]
    assert mixed, items
    for r in mixed:
        assert r["sell_through_rate_pct"] is None
        assert sum(g["quantity"] for g in r["sell_in_by_unit"]) == r["sell_in_units"]
        for g in r["by_unit"]:
            if g["sell_in"]:
                assert g["rate_pct"] == round(g["sell_through"] * 100.0 / g["sell_in"], 1)
    by_sku = client.get(f"{HQ}/sell-in?group_by=sku", headers=hq).get_json()["items"]
    assert all(not _mixed(r["sell_in_by_unit"] + r["sell_through_by_unit"]) for r in by_sku)
    assert any(r["sell_through_rate_pct"] is not None for r in by_sku)
    assert login(client).status_code == 302
    html = client.get("/hq/sell-through?group_by=city").get_data(as_text=True)
    table = html[html.index("进货 vs 动销"):]
    table = table[:table.index("</table>")]
    r = mixed[0]
    assert " · ".join(f"{g['quantity']:,} {g['unit']}" for g in r["sell_in_by_unit"]) in table
    assert f'<td class="n">{r["sell_in_units"]:,}</td>' not in table


def test_the_warehouses_stock_is_per_unit(app, client, demo):
    body = client.get(f"{HQ}/warehouses", headers=hq_login(client)).get_json()
    items = body["items"] if isinstance(body, dict) else body
    central = next(w for w in items if w["code"] == "WH-CENTRAL")
    with app.app_context():
        loc = db.session.scalar(sa.select(Warehouse.location_id).where(Warehouse.code == "WH-CENTRAL"))
        per_unit: dict[str, int] = {}
        for unit, n in db.session.execute(sa.select(Sku.unit, StockLevel.on_hand).join(Sku)
                                          .where(StockLevel.location_id == loc)):
            per_unit[unit] = per_unit.get(unit, 0) + n
        db.session.remove()
    assert {g["unit"]: g["quantity"] for g in central["stock_by_unit"]} == per_unit
    assert set(per_unit) >= {"提", "组", "袋"}
