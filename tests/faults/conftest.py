"""Faults at the app level: Redis unreachable, the database gone, WeChat hung (the timed runs are scripts/faults/)."""

from __future__ import annotations

import pytest

from tests.orders.conftest import ids


@pytest.fixture()
def demo_ids(app, demo):
    return ids(app)
