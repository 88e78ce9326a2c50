"""The codes use cases take the caller, check them and own their transaction (the edge only parses and renders)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.accounts.roles import HQ_ADMIN, HQ_ANALYST, WAREHOUSE_OPERATOR
from app.catalog.models import Sku
from app.codes import services
from app.core.security import Binding, Principal
from app.errors import Forbidden
from app.extensions import db
from app.inventory.models import Warehouse
from app.scans.policy import diversion_policy, set_scan_policy
from tests.helpers import table_counts

pytestmark = pytest.mark.service

ADMIN = Principal(user_id=None, kind="hq", bindings=(Binding(HQ_ADMIN),))  # type: ignore[arg-type]
ANALYST = Principal(user_id=None, kind="hq", bindings=(Binding(HQ_ANALYST),))  # type: ignore[arg-type]


def _ids() -> dict[str, int]:
    return {"milk": db.session.scalar(sa.select(Sku.id).where(Sku.code == "MILK250")),
            **dict(db.session.execute(sa.select(Warehouse.code, Warehouse.id)).all())}


def test_scan_policy_is_set_by_hq_only(app_ctx, demo):
    before = table_counts()
    with pytest.raises(Forbidden):
        set_scan_policy(ANALYST, diversion_policy="refuse")
    assert table_counts() == before
    assert set_scan_policy(ADMIN, diversion_policy="refuse") == "refuse"
    db.session.remove()
    assert diversion_policy() == "refuse"


def test_a_batch_is_put_away_only_into_the_operators_warehouse(app_ctx, demo):
    ids = _ids()
    batch_id = services.create_batch(ADMIN, sku_id=ids["milk"], quantity=6, case_size=6).id
    services.generate_batch(batch_id)
    hz_operator = Principal(user_id=None, kind="hq",  # type: ignore[arg-type]
                            bindings=(Binding(WAREHOUSE_OPERATOR, warehouse_id=ids["WH-HZ"]),))
    before = table_counts()
    for caller in (ANALYST, hz_operator):
        with pytest.raises(Forbidden):
            services.put_away(caller, batch_id=batch_id, warehouse_id=ids["WH-SZ"])
    with pytest.raises(Forbidden):
        services.create_batch(ANALYST, sku_id=ids["milk"], quantity=6)
    assert table_counts() == before
    assert services.put_away(hz_operator, batch_id=batch_id, warehouse_id=ids["WH-HZ"]) == 6
