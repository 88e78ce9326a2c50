"""Tables as .xlsx (openpyxl write-only: rows stream to the file, memory stays flat) or CSV (UTF-8 with BOM)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl import Workbook

# (key in the row dict, header a person reads)
Columns = Sequence[tuple[str, str]]


def _cell(value: Any) -> Any:
    return "" if value is None else value


def to_xlsx(rows: Iterable[dict[str, Any]], columns: Columns, *, sheet: str = "Sheet1") -> bytes:
    """An .xlsx workbook of one sheet: header row, then one row per dict."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet[:31])
    ws.append([title for _, title in columns])
    keys = [k for k, _ in columns]
    for row in rows:
        ws.append([_cell(row.get(k)) for k in keys])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_csv(rows: Iterable[dict[str, Any]], columns: Columns) -> bytes:
    """CSV with a BOM so Excel opens the Chinese text correctly."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([title for _, title in columns])
    keys = [k for k, _ in columns]
    for row in rows:
        w.writerow([_cell(row.get(k)) for k in keys])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def fen_to_yuan(fen: int | None) -> float | None:
    """For spreadsheets: a number in yuan (two decimals), so sums work in Excel."""
    return None if fen is None else round(fen / 100, 2)
