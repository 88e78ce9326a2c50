"""Schemathesis over the referral operations only, as HQ and as a consumer with the policy on (the full run,
tests/api/test_fuzz_openapi.py, covers them too as HQ, a store owner and a distributor)."""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema

from tests.api.test_fuzz_openapi import _config, _describe
from tests.conftest import hq_login
from tests.referrals.helpers import consumer, policy

pytestmark = pytest.mark.fuzz

PATHS = r"^/api/(mp/v1/(referral|referrals/|consumer-)|hq/v1/referral)"


def _failures(app, headers) -> list[str]:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=_config(headers, everything=True))
    failures = []
    for event in from_schema(schema.include(path_regex=PATHS)).execute():
        if isinstance(event, events.ScenarioFinished):
            for case_id, checks in event.recorder.checks.items():
                failures += [_describe(event.recorder.label, c, event.recorder.interactions.get(case_id))
                             for c in checks if c.status != Status.SUCCESS]
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.append(repr(event))
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
