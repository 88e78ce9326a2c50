#!/usr/bin/env python
"""Benchmark: issue 100,000 codes (rows, not images) in cases of 10. Target: at most 10 s.

Usage: .venv/bin/python scripts/bench/issue_codes.py [quantity]
Uses its own PostgreSQL database (BENCH_PG, BENCH_DB; default bench_codes), dropped and made afresh.
"""

import sys
import time

from common import fresh_database, make_app, setup_demo


def main() -> None:
    quantity = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    app = make_app(fresh_database())
    setup_demo(app)
    import sqlalchemy as sa

    from app.catalog.models import Sku
    from app.codes.models import CodeBatch
    from app.codes.services import generate_batch
    from app.core.tx import transaction
    from app.extensions import db

    with app.app_context():
        sku_id = db.session.scalar(sa.select(Sku.id).where(Sku.serialized.is_(True)).order_by(Sku.id))
        with transaction():
            batch = CodeBatch(sku_id=sku_id, quantity=quantity, case_size=10, status="pending")
            db.session.add(batch)
        started = time.perf_counter()
        generate_batch(batch.id)
        elapsed = time.perf_counter() - started
        batch = db.session.get(CodeBatch, batch.id)
        print(f"issued {batch.units_made} unit codes + {batch.cases_made} case codes in {elapsed:.2f} s "
              f"({batch.units_made / elapsed:,.0f} units/s); status={batch.status}; target <= 10 s")


if __name__ == "__main__":
    main()
