"""The read replica (`DATABASE_REPLICA_URL`, app/core/replica.py) against a real streaming standby.

CI (`.ci/run`) starts one with `scripts/replica` before the PostgreSQL suite and passes its URL for the test
database as TEST_DATABASE_REPLICA_URL (the standby replicates the whole cluster, so the database the suite makes on
the primary is there too). Without it these tests skip, saying why; under REQUIRE_POSTGRES=1 a missing or unusable
standby is a failure. The SQLite tests at the end need no replica: the pages say their figures are live.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time

import pytest
import sqlalchemy as sa

from app.accounts.models import User
from app.core.replica import ReadSource, replica_of, replica_reads
from app.core.tx import transaction
from app.extensions import db
from app.logging_setup import JsonFormatter
from tests.conftest import ON_POSTGRES, hq_login
from tests.helpers import clear_tables
from tests.metrics.helpers import parse, value

REPLICA_URL = os.environ.get("TEST_DATABASE_REPLICA_URL", "")
WHERE = "SELECT pg_is_in_recovery() AS standby, inet_server_port() AS port"


def _need(reason: str):
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"REQUIRE_POSTGRES=1 but {reason} (CI starts one with scripts/replica)")
    pytest.skip(f"{reason}: start one with scripts/replica and set TEST_DATABASE_REPLICA_URL")


@pytest.fixture(scope="module")
def replica_url():
    """The standby's URL, once it is known to answer in recovery (the suite on PostgreSQL only)."""
    if not ON_POSTGRES:
        _need("the suite does not run on PostgreSQL (TEST_DATABASE_URL), so there is no standby of it")
    if not REPLICA_URL:
        _need("TEST_DATABASE_REPLICA_URL is not set")
    url = REPLICA_URL if "+psycopg" in REPLICA_URL else REPLICA_URL.replace("postgresql://", "postgresql+psycopg://")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            standby = conn.execute(sa.text("SELECT pg_is_in_recovery()")).scalar_one()
    except sa.exc.OperationalError as exc:
        _need(f"the standby at TEST_DATABASE_REPLICA_URL does not answer ({type(exc.orig).__name__})")
    finally:
        engine.dispose()
    if not standby:
        _need("TEST_DATABASE_REPLICA_URL is not a standby (not in recovery)")
    return url


@pytest.fixture(scope="module")
def seeded(app, fake_wechat):
    """The demo data, seeded once for this module (its tests change nothing of it); the tables emptied after.
    The replica tests ask for `replica_url` first, so a missing standby skips them before any seeding."""
    from app.demo.seed import seed

    with app.app_context():
        clear_tables()
        seed()
        db.session.remove()
    yield
    with app.app_context():
        clear_tables()
        db.session.remove()


@pytest.fixture()
def replica_app(make_app):
    """Build an app with a replica (checked before every block); its replica engines closed after the test."""
    built = []

    def _make(url: str, **settings):
        other = make_app(**{"DATABASE_REPLICA_URL": url, "DATABASE_REPLICA_CHECK_SECONDS": 0,
                            "DATABASE_REPLICA_RETRY_SECONDS": 0, **settings})
        built.append(other)
        return other

    yield _make
    for other in built:
        with other.app_context():
            db.session.remove()
        replica_of(other).engine.dispose()


def _statements(engine) -> list[str]:
    """Every statement sent through `engine` from now on (the list grows as they run)."""
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def _writes(statements: list[str]) -> list[str]:
    return [s for s in statements if re.match(r"\s*(INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP)", s, re.I)]


def _wait_for_replay(app) -> None:
    """Until the standby has replayed everything the primary has written so far (a few ms here)."""
    with app.app_context():
        with db.engine.connect() as conn:
            lsn = conn.execute(sa.text("SELECT pg_current_wal_lsn()")).scalar_one()
        with replica_of(app).engine.connect() as conn:
            for _ in range(200):
                if conn.execute(sa.text("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"),
                                {"lsn": lsn}).scalar_one():
                    return
                time.sleep(0.05)
    raise AssertionError("the standby did not replay the primary's writes within 10 s")


def _fallbacks(client, reason: str) -> float:
    return value(parse(client.get("/metrics").get_data(as_text=True)), "replica_fallback_total", reason=reason)


def test_a_dashboard_is_served_by_the_standby_and_no_write_goes_there(replica_app, replica_url, seeded):
    rapp = replica_app(replica_url)
    client = rapp.test_client()
    headers = hq_login(client)
    _wait_for_replay(rapp)
    with rapp.app_context():
        replica_sql, primary_sql = _statements(replica_of(rapp).engine), _statements(db.engine)

    r = client.get("/api/hq/v1/sell-through?group_by=sku", headers=headers)
    assert r.status_code == 200, r.get_json()
    assert r.headers["X-Read-Source"].startswith("replica; lag=")
    assert r.get_json()["total"] > 0  # the demo's sales, read on the standby
    assert any("FROM daily_city_sales" in s for s in replica_sql)  # the dashboard's queries ran there...
    assert not _writes(replica_sql)  # ...and nothing that writes: the fold before it went to the primary
    assert any("DELETE FROM sales_inbox" in s for s in primary_sql)
    assert not any("FROM daily_city_sales" in s for s in primary_sql if not _writes([s]))

    with rapp.app_context():
        with replica_reads() as source:
            assert source.replica
            row = db.session.execute(sa.text(WHERE)).one()
            assert row.standby and row.port == sa.engine.make_url(replica_url).port
            # A use case inside the block, its reads included, runs on the primary: it reads its own writes.
            with transaction():
                inside = db.session.execute(sa.text(WHERE)).one()
                db.session.execute(sa.text("UPDATE users SET token_version = token_version WHERE id < 0"))
            assert not inside.standby
            # An ORM write outside a use case is flushed to the primary too.
            db.session.execute(sa.update(User).where(User.id < 0).values(token_version=User.token_version))
        assert not db.session.execute(sa.text(WHERE)).one().standby  # after the block: the primary
        db.session.rollback()
    assert not _writes(replica_sql)
    assert sum(s.lstrip().upper().startswith("UPDATE USERS") for s in primary_sql) == 2


def test_the_console_says_how_fresh_the_replica_is(replica_app, replica_url, seeded):
    rapp = replica_app(replica_url)
    client = rapp.test_client()
    html = client.get("/hq/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    assert client.post("/hq/login", data={"username": "admin", "password": "admin", "csrf": csrf}).status_code == 302
    page = client.get("/hq/sell-through")
    assert page.status_code == 200 and page.headers["X-Read-Source"].startswith("replica")
    assert re.search(r'data-read-source="replica">数据：截至约 \d+ 秒前（只读副本）', page.get_data(as_text=True))
    # The order list is no report: read on the primary, and says nothing of freshness.
    orders = client.get("/hq/orders")
    assert orders.status_code == 200 and "X-Read-Source" not in orders.headers
    assert "data-read-source" not in orders.get_data(as_text=True)


def test_a_dead_replica_falls_back_to_the_primary_and_says_so(replica_app, replica_url, seeded, caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    url = sa.engine.make_url(replica_url).set(port=dead).render_as_string(hide_password=False)
    rapp = replica_app(url)
    client = rapp.test_client()
    headers = hq_login(client)
    before = _fallbacks(client, "down")
    with caplog.at_level(logging.WARNING, logger="app.core.replica"):
        r = client.get("/api/hq/v1/overview", headers=headers)
    assert r.status_code == 200, r.get_json()
    assert r.headers["X-Read-Source"] == "primary; fallback=down"
    assert _fallbacks(client, "down") == before + 1
    lines = [json.loads(JsonFormatter().format(rec)) for rec in caplog.records if rec.name == "app.core.replica"]
    assert [(line["event"], line["reason"], line["level"]) for line in lines] == [
        ("replica_fallback", "down", "WARNING")]
    # The scrape says the replica cannot be read (and reports no lag for it).
    samples = parse(client.get("/metrics").get_data(as_text=True))
    assert value(samples, "metrics_source_up", source="replica") == 0
    assert not [k for k in samples if k[0] == "db_replica_lag_seconds"]


def test_a_replica_lost_mid_read_fails_that_read_and_the_next_go_to_the_primary(replica_app, replica_url, seeded):
    rapp = replica_app(replica_url, DATABASE_REPLICA_CHECK_SECONDS=60, DATABASE_REPLICA_RETRY_SECONDS=60)
    with rapp.app_context():
        with replica_reads() as source:
            assert source.replica
            pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        killer = sa.create_engine(replica_url, poolclass=sa.pool.NullPool)
        with killer.connect() as other:  # the standby's server ends that pooled connection
            assert other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        killer.dispose()
        with pytest.raises(sa.exc.OperationalError), replica_reads():
            for _ in range(50):  # the pool may hand out another, live connection first
                db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
                db.session.rollback()
        db.session.rollback()
        with replica_reads() as after:
            assert after == ReadSource(replica=False, fallback="down")
            assert not db.session.execute(sa.text(WHERE)).one().standby


def test_a_replica_too_far_behind_is_not_read(replica_app, replica_url, seeded):
    rapp = replica_app(replica_url, DATABASE_REPLICA_MAX_LAG_SECONDS=-1)  # any lag is too much
    client = rapp.test_client()
    headers = hq_login(client)
    before = _fallbacks(client, "lag")
    r = client.get("/api/hq/v1/store-stock?format=csv", headers=headers)
    assert r.status_code == 200 and r.headers["X-Read-Source"] == "primary; fallback=lag"
    assert _fallbacks(client, "lag") == before + 1
    # With a sane limit the lag is a gauge of the scrape.
    samples = parse(replica_app(replica_url).test_client().get("/metrics").get_data(as_text=True))
    assert value(samples, "metrics_source_up", source="replica") == 1
    assert value(samples, "db_replica_lag_seconds") >= 0


# --- without a replica (any engine) ------------------------------------------------------------------------

def test_without_a_replica_the_reports_say_they_are_live(client, seeded):
    html = client.get("/hq/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    assert client.post("/hq/login", data={"username": "admin", "password": "admin", "csrf": csrf}).status_code == 302
    for page in ("/hq/", "/hq/sell-through", "/hq/store-stock", "/hq/targets"):
        r = client.get(page)
        assert r.status_code == 200 and r.headers["X-Read-Source"] == "primary"
        assert 'data-read-source="primary">数据：实时<' in r.get_data(as_text=True), page


def test_replica_reads_is_a_no_op_without_a_replica(app_ctx):
    with replica_reads() as source:
        assert not source.replica and source.fallback is None
        assert db.session.execute(sa.text("SELECT 1")).scalar_one() == 1
