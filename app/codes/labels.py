"""Label exports: CSV for packaging-line printers, an A4 PDF label sheet, a PNG per code.

Images are made on demand, never stored. The PDF draws each QR's dark modules as filled rectangles (one per
horizontal run) from segno's matrix as raw path operators in module units; reportlab's path objects format
every float and took seconds per thousand labels.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from functools import cache

import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from app.codes.parse import grouped

_MASK = 2
CSV_HEADER = ["serial", "serial_grouped", "url", "kind", "case_serial"]


def csv_bytes(rows: Iterable[dict]) -> bytes:
    """CSV (UTF-8 with BOM, so Excel opens Chinese right): serial, grouped serial, printed URL, kind, case."""
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf)
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow([r["serial"], grouped(r["serial"]), r["url"], r["kind"], r.get("case_serial") or ""])
    return buf.getvalue().encode("utf-8")


def png_bytes(url: str, scale: int = 8) -> bytes:
    """One code as a PNG."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="png", scale=scale, border=2)
    return out.getvalue()


@cache
def _font() -> str:
    # A CID font built into every PDF reader: Chinese product names without shipping a font file.
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


def _runs(matrix) -> list[tuple[int, int, int]]:
    """(row, first column, length) of each horizontal run of dark modules."""
    runs = []
    for y, row in enumerate(matrix):
        x, n = 0, len(row)
        while x < n:
            if row[x]:
                start = x
                while x < n and row[x]:
                    x += 1
                runs.append((y, start, x - start))
            else:
                x += 1
    return runs


def pdf_bytes(labels: list[dict], *, columns: int = 4, rows: int = 8, title: str = "") -> bytes:
    """An A4 label sheet: `columns` × `rows` labels per page, each a QR with the product name and short code."""
    font = _font()
    page_w, page_h = A4
    margin = 8 * mm
    cell_w = (page_w - 2 * margin) / columns
    cell_h = (page_h - 2 * margin) / rows
    text_h = 9.0
    qr_size = min(cell_w - 4 * mm, cell_h - 2 * text_h - 3 * mm)
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, pageCompression=1)
    c.setTitle(title or "labels")
    per_page = columns * rows
    for i, label in enumerate(labels):
        if i and i % per_page == 0:
            c.showPage()
        slot = i % per_page
        col, row = slot % columns, slot // columns
        x0 = margin + col * cell_w
        y_top = page_h - margin - row * cell_h
        # A fixed mask: segno's search over all eight masks is 4x the cost of the whole label, and any mask
        # scans fine on a printed label.
        qr = segno.make(label["url"], error="m", mask=_MASK, boost_error=False)
        matrix = qr.matrix
        modules = len(matrix) + 2  # quiet zone of one module on each side
        module = qr_size / modules
        qx = x0 + (cell_w - qr_size) / 2 + module
        qy = y_top - 1.5 * mm - module
        c.saveState()
        c.transform(module, 0, 0, module, qx, qy)  # one module = one unit: whole numbers below
        c._code.append(" ".join(f"{x} {-y - 1} {n} 1 re" for y, x, n in _runs(matrix)) + " f")
        c.restoreState()
        c.setFont(font, 7)
        cx = x0 + cell_w / 2
        base = y_top - 1.5 * mm - qr_size - 2
        c.drawCentredString(cx, base - 7, (label.get("name") or "")[:24])
        c.setFont("Courier", 7)
        c.drawCentredString(cx, base - 7 - text_h, grouped(label["serial"]))
    if not labels:
        c.setFont(font, 12)
        c.drawString(margin, page_h - margin - 12, "没有标签")
    c.save()
    return out.getvalue()
