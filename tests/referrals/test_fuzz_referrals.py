"""Schemathesis over the referral operations only, as HQ and as a consumer with the policy on (the full run,
tests/api/test_fuzz_openapi.py, covers them too as HQ, a store owner and a distributor)."""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema

from tests.conftest import hq_login
from tests.referrals.helpers import consumer, policy

pytestmark = pytest.mark.fuzz

PATHS = r"^/api/(mp/v1/(referral|referrals/|consumer-(sessions|verifications))|hq/v1/referral)"
CHECKS = ("not_a_server_error", "response_schema_conformance", "status_code_conformance")


def _config(headers: dict[str, str]) -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "seed": 20261201, "headers": headers, "continue-on-failure": True,
        "generation": {"max-examples": 8, "deterministic": True, "no-shrink": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
    })


def _describe(label: str, check, interaction) -> str:
    response = interaction.response if interaction is not None else None
    info = check.failure_info
    return "\n".join([f"{label}: {check.name}",
                      f"  {info.failure.title}: {info.failure.message[:400]}" if info else "",
                      f"  answered {response.status_code}: {response.content[:300]!r}" if response else ""])


def _failures(app, headers) -> list[str]:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=_config(headers))
    failures, labels = [], set()
    for event in from_schema(schema.include(path_regex=PATHS)).execute():
        if isinstance(event, events.ScenarioFinished):
            labels.add(event.recorder.label)
            for case_id, checks in event.recorder.checks.items():
                failures += [_describe(event.recorder.label, c, event.recorder.interactions.get(case_id))
                             for c in checks if c.status != Status.SUCCESS]
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.append(repr(event))
    assert len(labels) == 9, sorted(labels)  # every referral operation was exercised
    return list(dict.fromkeys(failures))


def test_schemathesis_finds_nothing_in_the_referral_routes(app, client, demo, monkeypatch):
    from app.accounts import revocation

    monkeypatch.setattr(revocation, "bump", lambda user_id: None)
    admin = hq_login(client)
    policy(client, admin)
    shopper, _ = consumer(client, "fuzz_shopper")
    for headers in (admin, shopper):
        failures = _failures(app, headers)
        assert not failures, "\n\n".join(failures[:20])
