"""The demo seed: what API.md promises, and seeding twice changes nothing."""

from __future__ import annotations

import sqlalchemy as sa

from app.channel.models import Store
from app.demo.seed import seed
from app.extensions import db
from app.inventory.services import verify_ledger
from tests.conftest import mp_login
from tests.helpers import table_counts


def test_seed_twice_changes_nothing(app_ctx, demo):
    before = table_counts()
    assert "already present" in seed()
    assert table_counts() == before


def test_seed_if_empty_leaves_a_database_with_users_alone(app_ctx, clean_db):
    from app.accounts.services import create_hq_user
    from app.core.tx import transaction

    with transaction():
        create_hq_user(username="someone", password="pw", role="hq_admin")
    before = table_counts()
    assert "not seeding" in seed(only_if_empty=True)
    assert table_counts() == before


def test_demo_promises(client, demo, app):
    s1 = mp_login(client, "demo_store_owner")
    s2 = mp_login(client, "demo_store_owner_2")
    d1 = mp_login(client, "demo_distributor")
    me1 = client.get("/api/mp/v1/me", headers=s1).get_json()
    me2 = client.get("/api/mp/v1/me", headers=s2).get_json()
    assert me1["store"]["code"] == "S1" and me2["store"]["code"] == "S2"
    assert me1["store"]["city_code"] != me2["store"]["city_code"]
    assert client.get("/api/mp/v1/me", headers=d1).get_json()["partner"]["code"] == "D1"
    s1_id = me1["store_id"]
    assert client.get(f"/api/mp/v1/stock?store_id={s1_id}", headers=s2).status_code == 403
    assert client.get(f"/api/mp/v1/stock?store_id={s1_id}", headers=s1).status_code == 200
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Store.id))) == 10
        assert verify_ledger() == []
