"""This folder tests the foundation: the foundation's part of the demo is enough (and much faster)."""

import pytest


@pytest.fixture()
def demo(foundation_demo):
    """The demo's channel, catalog, warehouses and people, without the other areas' seeds."""
    yield
