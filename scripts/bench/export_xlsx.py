#!/usr/bin/env python3
"""Time the .xlsx export of 100,000 table rows (openpyxl write-only), the same code the API's format=xlsx uses.

    .venv/bin/python scripts/bench/export_xlsx.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()

    from openpyxl import load_workbook

    from app.analytics.exports import to_csv, to_xlsx
    from app.analytics.reports import TABLE_COLUMNS

    columns = TABLE_COLUMNS["store_stock"]
    rows = [{"store_name": f"门店{i}", "city_name": "深圳市", "distributor_name": f"分销商{i % 97}",
             "sku_name": f"商品{i % 40}", "on_hand": i % 300, "daily_rate": round(i % 17 / 3, 2),
             "days_of_cover": None if i % 11 == 0 else round(i % 300 / 7, 1)} for i in range(args.rows)]
    t = time.perf_counter()
    data = to_xlsx(rows, columns, sheet="store_stock")
    xlsx_s = time.perf_counter() - t
    t = time.perf_counter()
    csv_data = to_csv(rows, columns)
    csv_s = time.perf_counter() - t
    ws = load_workbook(io.BytesIO(data), read_only=True).active
    assert sum(1 for _ in ws.iter_rows(values_only=True)) == args.rows + 1  # header + every row
    print(f"xlsx: {args.rows:,} rows in {xlsx_s:.2f} s ({len(data) / 1e6:.1f} MB); "
          f"csv: {csv_s:.2f} s ({len(csv_data) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
