"""Registrations: the foundation's demo (channel, people) is enough for most; the walk uses the whole demo."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests.conftest import hq_login, mp_login
from tests.registrations.helpers import ids


@pytest.fixture()
def world(client, foundation_demo):
    """Ids by demo code and the headers of D1's, D2's and A1's staff and of HQ's admin."""
    stores, partners = ids()
    db.session.remove()
    return {"stores": stores, "partners": partners, "d1": mp_login(client, "demo_distributor"),
            "d2": mp_login(client, "demo_distributor_2"), "a1": mp_login(client, "demo_agent"),
            "hq": hq_login(client), "owner_s1": mp_login(client, "demo_store_owner")}
