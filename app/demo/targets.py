"""Demo targets: each distributor D1..D5 and the two agents, this month and last, every metric (CHANNEL.md §5);
last month's D1 sell-through was raised once mid-month, so it shows a second version."""

from __future__ import annotations

from datetime import timedelta

from app.accounts.roles import HQ_ADMIN
from app.analytics import targets
from app.core.clock import BUSINESS_TZ, now_utc
from app.core.security import Binding, Principal

# The system itself, with HQ's whole-network rights (as the foundation seed acts).
_SYSTEM = Principal(user_id=None, kind="hq", bindings=(Binding(HQ_ADMIN),))  # type: ignore[arg-type]

# Per distributor: sell-through units, sell-in fen, active stores, new stores (agents get the sum of theirs).
_BASE = {"D1": (120, 600_000, 3, 2), "D2": (80, 400_000, 2, 1), "D3": (40, 200_000, 1, 1),
         "D4": (30, 150_000, 1, 1), "D5": (20, 100_000, 1, 0)}
_AGENTS = {"A1": ("D1", "D3"), "A2": ("D2", "D4", "D5")}


def periods() -> tuple[str, str]:
    """This month and last, in BUSINESS_TZ."""
    today = now_utc().astimezone(BUSINESS_TZ).date()
    last = today.replace(day=1) - timedelta(days=1)
    return today.strftime("%Y-%m"), last.strftime("%Y-%m")


def seed(ctx) -> None:
    values = dict(_BASE)
    for agent, members in _AGENTS.items():
        values[agent] = tuple(sum(_BASE[d][i] for d in members if d in _BASE) for i in range(4))
    for period in periods():
        for code, figures in values.items():
            partner = ctx.partners.get(code)
            if partner is None:
                continue
            for metric, value in zip(targets.METRICS, figures, strict=True):
                targets.set_target(_SYSTEM, partner_id=partner.id, period=period, metric=metric, value=value)
    last = periods()[1]
    if "D1" in ctx.partners:
        targets.set_target(_SYSTEM, partner_id=ctx.partners["D1"].id, period=last, metric="sell_through_units",
                           value=_BASE["D1"][0] + 30)
