"""`GET /metrics`: the Prometheus scrape, for the monitoring server only.

Who may read it: a caller with `Authorization: Bearer <METRICS_TOKEN>` (when the setting is there), or, when
`METRICS_ALLOW_LOOPBACK` is on, a request from this machine's loopback that no proxy forwarded (no
`X-Forwarded-For`/`Forwarded`/`X-Real-IP`: a reverse proxy on the same host would otherwise make the whole world
"loopback"). Anyone else gets 404, as if there were no such page. No session, no cookie, no rate limit.

What is read at scrape time, by the worker that answers (no process keeps it): the rollups' fold lag (one indexed
read), the RQ queue's depth and failed jobs (with Redis), and the replica's lag when DATABASE_REPLICA_URL is set.
"""

from __future__ import annotations

import hmac
import logging
from ipaddress import ip_address

from flask import Blueprint, Response, current_app, request
from prometheus_client.core import GaugeMetricFamily

from app.analytics.rollups import fold_lag_seconds
from app.core import metrics
from app.core.replica import replica_of
from app.errors import NotFound
from app.extensions import limiter
from app.integrations.jobs import queue_stats

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)
_PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def allowed() -> bool:
    """The access rule of the module's docstring."""
    token = current_app.config.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    if not current_app.config.get("METRICS_ALLOW_LOOPBACK"):
        return False
    if any(h in request.headers for h in _PROXY_HEADERS):
        return False
    try:
        return ip_address(request.remote_addr or "").is_loopback
    except ValueError:  # a unix socket has no address: not loopback as far as we can tell
        return False


class ScrapeTime:
    """The gauges computed when a scrape comes: nothing kept between scrapes, nothing to add up across workers.

    A source that cannot be read is left out of this scrape and counted in `metrics_source_up{source}` (0)."""

    def collect(self):
        up = GaugeMetricFamily("metrics_source_up", "Whether a scrape-time source could be read (1) or not (0).",
                               labels=["source"])
        try:
            lag = fold_lag_seconds()
        except Exception as exc:  # the database is down: the scrape still answers with the rest
            log.warning("metrics: cannot read the fold lag (%s)", exc.__class__.__name__)
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            yield GaugeMetricFamily("rollup_fold_lag_seconds",
                                    "Age of the oldest sale not yet folded into the rollups (0: the inbox is empty).",
                                    value=lag)
        if current_app.config.get("REDIS_URL"):
            try:
                stats = queue_stats(current_app._get_current_object())
            except Exception as exc:
                log.warning("metrics: cannot read the job queue (%s)", exc.__class__.__name__)
                up.add_metric(["redis"], 0)
            else:
                up.add_metric(["redis"], 1)
                depth = GaugeMetricFamily("rq_queue_depth", "Jobs waiting in the RQ queue.", labels=["queue"])
                failed = GaugeMetricFamily("rq_failed_jobs", "Jobs in the RQ queue's failed registry.",
                                           labels=["queue"])
                for name, (waiting, failures) in stats.items():
                    depth.add_metric([name], waiting)
                    failed.add_metric([name], failures)
                yield depth
                yield failed
        replica = replica_of(current_app)
        if replica is not None:
            try:
                standby, lag = replica.measure()
            except Exception as exc:
                log.warning("metrics: cannot read the replica's lag (%s)", exc.__class__.__name__)
                up.add_metric(["replica"], 0)
            else:
                up.add_metric(["replica"], 1)
                if standby and lag is not None:
                    yield GaugeMetricFamily("db_replica_lag_seconds",
                                            "How far the read replica's replay is behind (0 when it has caught up).",
                                            value=lag)
        yield up


@bp.get("/metrics")
@limiter.exempt
def scrape():
    """The metrics in Prometheus' text format."""
    if not allowed():
        raise NotFound()
    body = metrics.exposition(extra=[ScrapeTime()])
    return Response(body, status=200, headers={"Content-Type": metrics.CONTENT_TYPE_LATEST,
                                               "Cache-Control": "no-store"})
