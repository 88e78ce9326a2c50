"""A logged-in consumer's check of a unit in the mini-program: the same answer as the public page, recorded
against the consumer (what lets them share a referral link), and what earns their referrers a reward."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa

from app.codes.models import Code
from app.core.security import Principal, authorize_action
from app.extensions import db
from app.referrals import services as referrals
from app.verification.services import verify


def verify_as_consumer(principal: Principal, text: str, *, lat: float | None = None,
                       lng: float | None = None) -> dict[str, Any]:
    """Check a code for a logged-in consumer; a genuine unit is recorded against them (once per unit)."""
    authorize_action(principal, "consumer.verify")
    # The consumer's own "phone": their repeat checks count once per window, as a cookie's do on the public page.
    viewer = hashlib.sha256(f"consumer:{principal.user_id}".encode()).hexdigest()
    answer = verify(text, lat=lat, lng=lng, viewer=viewer)
    answer["referral_rewards"] = []
    if answer.get("genuine"):
        code_id = db.session.scalar(sa.select(Code.id).where(Code.serial == answer["serial"], Code.kind == "unit"))
        if code_id is not None:
            answer["referral_rewards"] = [{"level": r["level"], "status": r["status"]}
                                          for r in referrals.record_verification(principal.user_id, code_id)]
    return answer
