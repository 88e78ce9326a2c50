"""The sample Grafana dashboard (ops/grafana/channel-dashboard.json) names the metrics the app really exposes, and
shows every one of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from app.core import metrics
from app.web import metrics as scrape_edge

DASHBOARD = Path(__file__).resolve().parents[2] / "ops" / "grafana" / "channel-dashboard.json"
SCRAPE_TIME = {"rollup_fold_lag_seconds", "rq_queue_depth", "rq_failed_jobs", "db_replica_lag_seconds",
               "metrics_source_up"}
_FUNCTIONS = {"sum", "rate", "increase", "max", "min", "by", "le", "histogram_quantile"}


def _exposed() -> set[str]:
    kept = {metrics.HTTP_DURATION, metrics.SCANS, metrics.WECHAT_DURATION, metrics.WECHAT_ERRORS,
            metrics.JOBS_FAILED, metrics.REPLICA_FALLBACK}
    names = set()
    for metric in kept:  # the series names each family has once it has a child
        for family in metric.describe():
            suffixes = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",)}[family.type]
            names |= {family.name + suffix for suffix in suffixes}
    source = Path(scrape_edge.__file__).read_text(encoding="utf-8")
    assert all(f'"{name}"' in source for name in SCRAPE_TIME)
    return names | SCRAPE_TIME


def _referenced() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs
    found = set()
    for expr in exprs:
        without_labels = re.sub(r"\[[^\]]*\]|\{[^}]*\}", "", re.sub(r"by \([^)]*\)", "", expr))
        found |= {w for w in re.findall(r"[a-z_][a-z0-9_]*", without_labels) if w not in _FUNCTIONS}
    return found


def test_every_metric_in_the_dashboard_is_exposed():
    missing = _referenced() - _exposed()
    assert not missing, f"the dashboard names metrics the app does not expose: {sorted(missing)}"


def test_every_metric_has_a_panel():
    referenced = {re.sub(r"_(bucket|count|sum)$", "", name) for name in _referenced()}
    families = {"http_request_duration_seconds", "scans_total", "wechat_call_duration_seconds",
                "wechat_call_errors_total", "jobs_failed_total", "replica_fallback_total", *SCRAPE_TIME}
    assert families <= referenced, sorted(families - referenced)
