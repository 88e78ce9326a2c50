#!/usr/bin/env python
"""Benchmark: batch uploads of 500 sells over the app's HTTP stack (test client, PostgreSQL).
Target: at least 10,000 codes per second.

Usage: .venv/bin/python scripts/bench/scan_batch.py [batches]
Each batch is 500 fresh units of one store, sold by its owner: one HTTP request through the whole app (JSON in,
scope check, replay check, the hot path's one SQL call, JSON out). Uses its own database (BENCH_DB), made afresh.
"""

import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime

from common import fresh_database, make_app, owner_token, setup_demo, stock_codes


def main() -> None:
    batches = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    app = make_app(fresh_database())
    setup_demo(app)
    serials, owner = stock_codes(app, "S1", 500 * (batches + 1))
    headers = {"Authorization": f"Bearer {owner_token(app, owner)}"}
    client = app.test_client()
    now = datetime.now(UTC).isoformat()

    def payload(chunk):
        return {"items": [{"request_id": uuid.uuid4().hex, "code": s, "action": "sell", "scanned_at": now}
                          for s in chunk]}

    warm = client.post("/api/mp/v1/scans/batch", json=payload(serials[:500]), headers=headers)
    assert warm.status_code == 200 and warm.get_json()["accepted"] == 500, warm.get_json()
    bodies = [json.dumps(payload(serials[500 * (i + 1):500 * (i + 2)])) for i in range(batches)]
    times = []
    for b in bodies:
        started = time.perf_counter()
        r = client.post("/api/mp/v1/scans/batch", data=b, content_type="application/json", headers=headers)
        times.append(time.perf_counter() - started)
        assert r.status_code == 200 and r.get_json()["accepted"] == 500, r.get_json()
    elapsed, median = sum(times), statistics.median(times)
    total = 500 * batches
    print(f"{batches} batches of 500 sells: {total} codes in {elapsed:.2f} s = {total / elapsed:,.0f} codes/s; "
          f"per batch median {median * 1000:.0f} ms ({500 / median:,.0f} codes/s), "
          f"fastest {min(times) * 1000:.0f} ms, slowest {max(times) * 1000:.0f} ms; target >= 10,000 codes/s")


if __name__ == "__main__":
    main()
