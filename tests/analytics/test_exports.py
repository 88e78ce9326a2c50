"""Exports open in openpyxl with the same cells, escaping included; CSV carries a BOM."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from app.analytics.exports import to_csv, to_xlsx

COLUMNS = [("name", "名称"), ("units", "销量"), ("rate", "日均"), ("note", "备注")]
ROWS = [{"name": "A&B <店>", "units": 12, "rate": 1.5, "note": None},
        {"name": '引号"测试', "units": -3, "rate": 0.0, "note": "  前后空格  "}]


def test_xlsx_round_trip():
    ws = load_workbook(io.BytesIO(to_xlsx(ROWS, COLUMNS, sheet="销量/城市"))).active
    assert ws.title == "销量_城市"
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("名称", "销量", "日均", "备注")
    assert ws["A1"].font.bold and ws.freeze_panes == "A2"
    assert rows[1][:3] == ("A&B <店>", 12, 1.5) and rows[1][3] in (None, "")
    assert rows[2] == ('引号"测试', -3, 0, "  前后空格  ")


def test_xlsx_of_many_rows_keeps_every_row():
    # Speed is measured by scripts/bench/export_xlsx.py, not here.
    rows = [{"name": f"门店{i}", "units": i, "rate": i / 7, "note": "x"} for i in range(5_000)]
    data = to_xlsx(rows, COLUMNS)
    assert sum(1 for _ in load_workbook(io.BytesIO(data), read_only=True).active.iter_rows()) == 5_001


def test_csv_has_bom_and_header():
    text = to_csv(ROWS, COLUMNS).decode("utf-8")
    assert text.startswith("\ufeff名称,销量,日均,备注")
    assert '"引号""测试"' in text
