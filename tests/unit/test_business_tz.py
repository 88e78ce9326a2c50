"""The business time zone has one source, `app.core.clock.BUSINESS_TZ`: nothing else names it."""

from __future__ import annotations

import re
from pathlib import Path

from app.core import clock

ROOT = Path(__file__).resolve().parents[2]


def test_the_business_time_zone_is_named_only_by_the_clock():
    named = re.compile("[\"']" + re.escape(clock.BUSINESS_TZ.key) + "[\"']")  # as a string in code, not in prose
    found = [str(p.relative_to(ROOT)) for top in ("app", "miniprogram_api") for p in sorted((ROOT / top).rglob("*.py"))
             if p != ROOT / "app/core/clock.py" and named.search(p.read_text(encoding="utf-8"))]
    assert found == []


def test_the_config_has_no_time_zone_of_its_own(app):
    assert "BUSINESS_TZ" not in app.config
