"""Shared set-up for the benchmarks: a PostgreSQL database of their own with the demo and stocked codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PG = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_DB", "bench_codes")
DATABASE_URL = f"{PG}/{DB_NAME}"


def fresh_database() -> str:
    """Drop and create the benchmark database (never the app's or the tests')."""
    host = PG.split("@", 1)[1].split(":")[0]
    for cmd in (["dropdb", "-h", host, "-U", "postgres", "--if-exists", "--force", DB_NAME],
                ["createdb", "-h", host, "-U", "postgres", DB_NAME]):
        subprocess.run(cmd, check=True)
    return DATABASE_URL


def make_app(url: str):
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "JOBS_MODE": "inline", "RATELIMIT_ENABLED": False,
                       "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 10, "max_overflow": 10}})


def setup_demo(app) -> None:
    from app.demo.seed import seed
    from app.extensions import db

    with app.app_context():
        db.create_all()
        seed()


def stock_codes(app, store_code: str, n: int) -> tuple[list[str], int]:
    """n fresh unit codes of the first serialized SKU in the store's stock; returns (serials, owner user id)."""
    import sqlalchemy as sa

    from app.accounts.models import Membership
    from app.catalog.models import Sku
    from app.channel.models import Store
    from app.codes.models import Code, CodeBatch
    from app.codes.services import generate_batch
    from app.core.tx import transaction
    from app.extensions import db
    from app.inventory.services import move_stock

    with app.app_context():
        sku_id = db.session.scalar(sa.select(Sku.id).where(Sku.serialized.is_(True)).order_by(Sku.id))
        store = db.session.scalar(sa.select(Store).where(Store.code == store_code))
        with transaction():
            batch = CodeBatch(sku_id=sku_id, quantity=n, status="pending")
            db.session.add(batch)
        generate_batch(batch.id)
        with transaction():
            db.session.execute(sa.update(Code).where(Code.batch_id == batch.id).values(
                state="in_store", store_id=store.id, location_id=store.location_id, destination_store_id=store.id,
                destination_distributor_id=store.distributor_id, destination_region=store.city_code))
            move_stock(location_id=store.location_id, sku_id=sku_id, on_hand=n, kind="receive", reason="bench")
        serials = list(db.session.scalars(sa.select(Code.serial).where(Code.batch_id == batch.id)
                                          .order_by(Code.id)))
        owner = db.session.scalar(sa.select(Membership.user_id).where(Membership.store_id == store.id,
                                                                      Membership.role == "store_owner"))
        return serials, owner


def owner_token(app, user_id: int) -> str:
    from app.accounts.models import User
    from app.extensions import db
    from app.sessions.flows import token_for

    with app.app_context():
        return token_for(db.session.get(User, user_id), "mp")["token"]


def store_owner_tokens(app, store_codes: list[str]) -> dict[str, str]:
    """A store-owner token per store (a bench user bound to each store that has no owner yet)."""
    import sqlalchemy as sa

    from app.accounts.models import Membership, User
    from app.channel.models import Store
    from app.core.tx import transaction
    from app.extensions import db

    out = {}
    with app.app_context():
        for code in store_codes:
            store = db.session.scalar(sa.select(Store).where(Store.code == code))
            user_id = db.session.scalar(sa.select(Membership.user_id).where(
                Membership.store_id == store.id, Membership.role == "store_owner"))
            if user_id is None:
                with transaction():
                    user = User(openid=f"bench_owner_{code}", display_name=f"bench {code}")
                    user.memberships.append(Membership(role="store_owner", store_id=store.id))
                    db.session.add(user)
                user_id = user.id
            out[code] = user_id
    return {code: owner_token(app, uid) for code, uid in out.items()}
