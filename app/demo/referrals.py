"""Demo referral rewards: HQ's policy saved but switched off (CHANNEL.md §9: off unless HQ switches it on), with
example values, so the console shows the form filled in and one switch turns it on. No referral is seeded: every
mini-program referral route answers `referral_off` until then."""

from __future__ import annotations

from app.accounts.roles import HQ_ADMIN
from app.core.security import Binding, Principal
from app.referrals import services

_SYSTEM = Principal(user_id=None, kind="hq", bindings=(Binding(HQ_ADMIN),))  # type: ignore[arg-type]


def seed(ctx) -> None:
    services.update_policy(_SYSTEM, **{**services.DEFAULTS, "enabled": False})
