"""The guard: no WeChat or WeChat Pay call is made while a database transaction is open.

These run the app's own gateways against its database and the fake WeChat (tests/integrations/ tests the
gateways alone, with no app).
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from app.core.tx import transaction
from app.extensions import db
from app.integrations.guard import TransactionOpenDuringCall, check_no_open_transaction
from app.integrations.wechat import get_wechat
from app.integrations.wechatpay import PayOrderNotFound, get_wechatpay


@pytest.fixture()
def root_app(app_ctx, clean_db):
    yield app_ctx
    db.session.rollback()


def test_a_wechat_call_inside_a_transaction_raises(root_app, fake_wechat):
    with pytest.raises(TransactionOpenDuringCall, match="WeChat called with a database transaction open"), \
            transaction():
        db.session.execute(sa.text("SELECT 1"))
        get_wechat().code_to_session("demo:guard_user")
    assert not db.session().in_transaction()


def test_a_wechat_pay_call_inside_a_transaction_raises(root_app, fake_wechat):
    with pytest.raises(TransactionOpenDuringCall, match="WeChat Pay called"), transaction():
        db.session.execute(sa.text("SELECT 1"))
        get_wechatpay().query_by_out_trade_no("NO-SUCH-ORDER-1")


def test_a_read_left_open_counts_as_an_open_transaction(root_app, fake_wechat):
    db.session.execute(sa.text("SELECT 1"))  # autobegins, as any read does
    with pytest.raises(TransactionOpenDuringCall):
        get_wechat().code_to_session("demo:guard_user")
    db.session.rollback()


def test_calls_with_no_transaction_open_go_through(root_app, fake_wechat):
    db.session.execute(sa.text("SELECT 1"))
    db.session.rollback()
    assert get_wechat().code_to_session("demo:guard_user")["openid"] == "guard_user"
    with pytest.raises(PayOrderNotFound):
        get_wechatpay().query_by_out_trade_no("NO-SUCH-ORDER-2")


def test_production_logs_an_error_and_lets_the_call_go_ahead(root_app, fake_wechat, monkeypatch, caplog):
    monkeypatch.setitem(root_app.config, "TESTING", False)
    monkeypatch.setitem(root_app.config, "APP_ENV", "production")
    with caplog.at_level(logging.ERROR, logger="app.integrations.guard"), transaction():
        db.session.execute(sa.text("SELECT 1"))
        assert get_wechat().code_to_session("demo:guard_user")["openid"] == "guard_user"
    assert [r.getMessage() for r in caplog.records if r.name == "app.integrations.guard"] == [
        "WeChat called with a database transaction open: end it (commit, or db.session.rollback() after a read) "
        "before calling out"]


def test_development_raises_too(root_app, monkeypatch):
    monkeypatch.setitem(root_app.config, "TESTING", False)
    monkeypatch.setitem(root_app.config, "APP_ENV", "development")
    db.session.execute(sa.text("SELECT 1"))
    with pytest.raises(TransactionOpenDuringCall):
        check_no_open_transaction("WeChat")
    db.session.rollback()


def test_no_app_context_means_no_session_to_check():
    check_no_open_transaction("WeChat")  # the gateways also run outside the app (tests, scripts)
