"""Every partner's inputs to its assessment of a month, each aggregated in SQL (GROUP BY over the facts), never
one event at a time in Python:

- targets and actuals: `app.analytics.targets.actuals` (by the attribution stored on each fact, net of returns
  and undos in the month), beside the partner's live targets of the month;
- ratings: count and sum of the month's ratings of the distributor (`store_ratings`);
- diversion alerts: the month's alerts (not dismissed) whose unit turned up at a store of the partner
  (`actual_distributor_id`, stored when the alert was raised), an agent counting its distributors';
- training: `app.training.queries.training_rates`;
- base: the partner's sell-in of the month in fen (paid orders net of refunds, from the stored attribution).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from app.analytics.target_models import PartnerTarget
from app.analytics.targets import actuals, month_bounds
from app.assessment.scoring import Inputs, assess
from app.channel.models import Partner
from app.core.clock import business_day
from app.extensions import db
from app.ratings.models import StoreRating
from app.ratings.queries import min_count
from app.scans.models import DiversionAlert
from app.training.queries import training_rates

ASSESSED_KINDS = ("agent", "distributor")


def assessed_partners() -> list[tuple[int, str]]:
    return [tuple(r) for r in db.session.execute(
        sa.select(Partner.id, Partner.path).where(Partner.kind.in_(ASSESSED_KINDS)).order_by(Partner.id))]


def gather(period: str) -> dict[int, Inputs]:
    partners = assessed_partners()
    ids = [pid for pid, _ in partners]
    if not ids:
        return {}
    start, end = month_bounds(period)
    got = actuals(ids, period)

    tt = PartnerTarget.__table__
    targets: dict[int, list[tuple[str, int, int]]] = {}
    for pid, metric, value in db.session.execute(
            sa.select(tt.c.partner_id, tt.c.metric, tt.c.value)
            .where(tt.c.period == period, tt.c.superseded_at.is_(None)).order_by(tt.c.partner_id, tt.c.metric)):
        if (pid, metric) in got:
            targets.setdefault(pid, []).append((metric, int(value), got.get((pid, metric), 0)))

    rt = StoreRating.__table__
    ratings = {pid: (int(n), int(s)) for pid, n, s in db.session.execute(
        sa.select(rt.c.distributor_id, sa.func.count(), sa.func.sum(rt.c.score))
        .where(rt.c.period == period).group_by(rt.c.distributor_id))}

    at = DiversionAlert.__table__
    by_distributor = dict(db.session.execute(
        sa.select(at.c.actual_distributor_id, sa.func.count())
        .where(at.c.created_at >= start, at.c.created_at < end, at.c.status != "dismissed",
               at.c.actual_distributor_id.is_not(None))
        .group_by(at.c.actual_distributor_id)).all())
    paths = dict(partners)
    alerts: dict[int, int] = {}
    for did, n in by_distributor.items():
        path = paths.get(did) or db.session.scalar(sa.select(Partner.path).where(Partner.id == did)) or ""
        for ancestor in path.strip("/").split("/"):
            if ancestor.isdigit() and int(ancestor) in paths:
                alerts[int(ancestor)] = alerts.get(int(ancestor), 0) + int(n)

    last_day = business_day(end - timedelta(seconds=1))
    training = training_rates(ids, last_day)
    min_n = min_count()
    return {pid: Inputs(targets=targets.get(pid, []), rating_count=ratings.get(pid, (0, 0))[0],
                        rating_sum=ratings.get(pid, (0, 0))[1], rating_min=min_n, training=training.get(pid),
                        alerts=alerts.get(pid, 0), sell_in_fen=got[(pid, "sell_in_fen")])
            for pid in ids}


def inputs_json(i: Inputs) -> dict[str, Any]:
    """The inputs as the statement shows them."""
    return {"targets": [{"metric": m, "target": t, "actual": a} for m, t, a in i.targets],
            "rating": {"count": i.rating_count, "sum": i.rating_sum, "min_count": i.rating_min,
                       "counted": i.rating_count >= i.rating_min and i.rating_count > 0},
            "training": ({"completed": i.training[0], "required": i.training[1]} if i.training else None),
            "alerts": i.alerts, "sell_in_fen": i.sell_in_fen}


def compute(period: str, scheme: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """{partner_id: {inputs, parts, score_x100, tier_index, tier_name, rebate_bp, base_fen, rebate_fen}}."""
    return {pid: {"inputs": inputs_json(i), **assess(i, scheme)} for pid, i in gather(period).items()}
