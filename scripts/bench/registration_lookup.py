#!/usr/bin/env python
"""What a scan-in pays for registrations: `convert_for_store` for a store whose shop nobody registered (the usual
case), next to a one-row select by primary key, in milliseconds per call (median and p95 of each round), with
protected registrations of other shops in the same district in the table.

Usage: DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/<scratch db> .venv/bin/python \\
       scripts/bench/registration_lookup.py [calls]
The database is emptied and left empty (it is a scratch database, never one with data you keep).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main(calls: int) -> None:
    import sqlalchemy as sa

    from app import create_app
    from app.channel.models import Store
    from app.channel.registrations import convert_for_store, create_registration
    from app.core.security import Binding, Principal
    from app.demo.seed import seed
    from app.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": os.environ["DATABASE_URL"], "JOBS_MODE": "inline",
                      "RATELIMIT_ENABLED": False})
    with app.app_context():
        db.drop_all()
        db.create_all()
        seed(extras=False)
        store = db.session.scalar(sa.select(Store).where(Store.code == "S1"))
        store_id, d1 = store.id, store.distributor
        staff = Principal(None, "mp", (Binding("distributor_staff", partner_id=d1.id,  # type: ignore[arg-type]
                                               partner_path=d1.path),))
        for i in range(40):
            create_registration(staff, request_id=f"bench-{i}", name=f"邻店{i}", phone=f"1390000{i:04d}",
                                region_code=store.district_code, industry="convenience")
        db.session.rollback()
        for _ in range(3):
            rounds = {}
            for name, fn in (("one-row select", lambda: db.session.execute(
                    sa.select(Store.id).where(Store.id == store_id)).first()),
                             ("convert_for_store", lambda: convert_for_store(store_id, via="scan_in"))):
                samples = []
                for _ in range(calls):
                    t = time.perf_counter()
                    fn()
                    samples.append((time.perf_counter() - t) * 1000)
                db.session.rollback()
                samples.sort()
                rounds[name] = (statistics.median(samples), samples[int(len(samples) * 0.95)])
            print("  ".join(f"{k}: median {m:.3f} ms, p95 {p:.3f} ms" for k, (m, p) in rounds.items()))
        db.drop_all()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
