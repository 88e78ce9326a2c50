import pytest

from tests.referrals import helpers


@pytest.fixture(autouse=True)
def _fresh_units():
    helpers._used.clear()
    yield
