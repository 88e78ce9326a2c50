"""Demo assessment (CHANNEL.md §8): a scheme for last month and this month; last month closed, so every agent
and distributor has a score, a tier, a rebate entry and a statement. Runs after the demo targets."""

from __future__ import annotations

from app.accounts.roles import HQ_ADMIN
from app.assessment import services
from app.core.security import Binding, Principal
from app.demo.targets import periods

_SYSTEM = Principal(user_id=None, kind="hq", bindings=(Binding(HQ_ADMIN),))  # type: ignore[arg-type]

WEIGHTS = {"attainment": 50, "rating": 30, "training": 20, "attainment_cap_bp": 12000, "diversion_penalty": 2}
TIERS = [{"name": "铜牌", "min_score": 0, "rebate_bp": 50}, {"name": "银牌", "min_score": 40, "rebate_bp": 100},
         {"name": "金牌", "min_score": 70, "rebate_bp": 200}, {"name": "钻石", "min_score": 95, "rebate_bp": 300}]


def seed(ctx) -> None:
    this, last = periods()
    for period in (last, this):
        services.put_scheme(_SYSTEM, period=period, weights=WEIGHTS, tiers=TIERS, base="sell_in")
    services.close_period(_SYSTEM, last)
