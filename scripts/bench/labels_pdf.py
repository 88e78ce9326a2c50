#!/usr/bin/env python
"""Benchmark: an A4 PDF label sheet of 1,000 codes. Target: at most 5 s. No database needed.

Usage: .venv/bin/python scripts/bench/labels_pdf.py [count]
"""

import sys
import time

import common  # noqa: F401  (puts the project on sys.path)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    from app.codes.labels import pdf_bytes
    from app.codes.parse import code_url, new_serials

    rows = [{"serial": s, "url": code_url("https://q.example.com", "06901234567892", s), "name": "山泉纯牛奶"}
            for s in new_serials(count)]
    started = time.perf_counter()
    pdf = pdf_bytes(rows, columns=4, rows=8)
    elapsed = time.perf_counter() - started
    print(f"{count} labels, {len(pdf) / 1e6:.2f} MB PDF in {elapsed:.2f} s; target <= 5 s")


if __name__ == "__main__":
    main()
