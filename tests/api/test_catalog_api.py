"""HQ edits a product through the API, over the same use case as the console's product form."""

from __future__ import annotations

import pytest

from tests.helpers import assert_db_unchanged, assert_error


@pytest.fixture()
def demo(foundation_demo):
    """The catalog and the people are enough."""


def test_patch_a_product_changes_only_what_is_given(client, admin):
    product = client.get("/api/hq/v1/products", headers=admin).get_json()["items"][0]
    resp = client.patch(f"/api/hq/v1/products/{product['id']}", json={"category": " 乳品 "}, headers=admin)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {**product, "category": "乳品"}


def test_patch_a_product_refuses_an_empty_name_an_unknown_id_and_an_analyst(client, admin, analyst):
    product_id = client.get("/api/hq/v1/products", headers=admin).get_json()["items"][0]["id"]
    with assert_db_unchanged("products"):
        assert_error(client.patch(f"/api/hq/v1/products/{product_id}", json={"name": ""}, headers=admin), 422)
        assert_error(client.patch(f"/api/hq/v1/products/{product_id}", json={"name": "  "}, headers=admin), 422,
                     "product_name_missing")
        assert_error(client.patch("/api/hq/v1/products/999999", json={"name": "新"}, headers=admin), 404,
                     "product_not_found")
        assert_error(client.patch(f"/api/hq/v1/products/{product_id}", json={"name": "新"}, headers=analyst), 403)
