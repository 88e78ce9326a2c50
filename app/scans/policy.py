"""HQ's scan policy: what a sell of a diverted unit (shipped for another store, distributor or region) does."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from app.core.clock import now_utc
from app.core.security import Principal, authorize
from app.core.tx import transaction
from app.errors import ValidationFailed
from app.extensions import db
from app.scans.models import ScanPolicy

DIVERSION_POLICIES = ("alert", "refuse")


def diversion_policy() -> str:
    """HQ's setting: `alert` (sell, and tell HQ) or `refuse`; the configured default until HQ sets one."""
    value = db.session.scalar(sa.select(ScanPolicy.diversion_policy).where(ScanPolicy.id == 1))
    return value or current_app.config["DIVERSION_POLICY"]


def get_scan_policy(principal: Principal) -> str:
    """The diversion policy, for HQ."""
    authorize(principal, "hq.read")
    return diversion_policy()


def set_scan_policy(principal: Principal, *, diversion_policy: str) -> str:
    """HQ sets the diversion policy: `alert` (sell, and tell HQ) or `refuse`; returns it."""
    authorize(principal, "hq.write")
    if diversion_policy not in DIVERSION_POLICIES:
        raise ValidationFailed("窜货策略只能是 alert 或 refuse", code="invalid_policy",
                               details={"fields": {"diversion_policy": ["只能是 alert 或 refuse"]}})
    with transaction():
        policy = db.session.get(ScanPolicy, 1) or ScanPolicy(id=1)
        policy.diversion_policy, policy.updated_by_id, policy.updated_at = (
            diversion_policy, principal.user_id, now_utc())
        db.session.add(policy)
    return diversion_policy
