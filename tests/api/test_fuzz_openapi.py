"""Schemathesis over every operation of /api/openapi.json, in process, as HQ, a store owner and a distributor.

The document is loaded from the app itself and every request goes through the WSGI app (no network; WeChat is
the tests' fake). Each caller's run starts from a fresh demo database and may change it at will. Checks:
`not_a_server_error` (nothing answers 5xx), `response_schema_conformance` (every answer, errors included, is what
the document says) and `status_code_conformance` (every status is documented). Any failure fails this test with
the operation, the check and a reproduction; nothing is skipped.

Runtime is bounded and repeatable: a fixed seed, derandomized generation, `MAX_EXAMPLES` per operation in the
fuzzing phase (the examples and coverage phases are finite by construction), no shrinking, no example database.
Run it alone with `pytest -m fuzz`.

On PostgreSQL it runs as HQ only, the run that sends everything (malformed input and every method): what an
engine can do differently with input (a NUL byte in text, an integer past bigint) is found there. The other
callers' runs keep to valid input and check what their scope answers, which does not depend on the engine (the
scope matrix checks it on both); they run on SQLite.

It drives schemathesis' engine (what its CLI runs) rather than `schemathesis.pytest.from_fixture`: that helper
renames pytest nodes through an attribute pytest 9.2 no longer has.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema

from app.extensions import db
from tests.conftest import ON_POSTGRES, hq_login, mp_login
from tests.helpers import clear_tables

pytestmark = pytest.mark.fuzz

MAX_EXAMPLES = 8
SEED = 20261201
CHECKS = ("not_a_server_error", "response_schema_conformance", "status_code_conformance")
CALLERS = {
    "hq_admin": lambda client: hq_login(client),
    "store_owner": lambda client: mp_login(client, "demo_store_owner"),
    "distributor": lambda client: mp_login(client, "demo_distributor"),
}


def _config(headers: dict[str, str], *, everything: bool) -> schemathesis.Config:
    # Malformed input is refused before anyone's rights are looked at, and which methods a path answers is the
    # same for everyone: HQ's run sends both; the other callers' coverage keeps to valid input, where their
    # scope decides the answer.
    coverage = {} if everything else {"unexpected-methods": [], "generation": {"mode": "positive"}}
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "headers": headers,
        "continue-on-failure": True,  # every failure of an operation, not only its first
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "no-shrink": True,
                       "database": "none"},
        "phases": {"stateful": {"enabled": False}, "coverage": coverage},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
    })


@pytest.fixture()
def fresh_demo(app, monkeypatch):
    """A fresh demo database; code batches are recorded but their codes are not made (a fuzzed batch may ask
    for a million codes, which is a worker's job, not the HTTP surface under test)."""
    from app.demo.seed import seed
    from app.integrations import jobs

    with app.app_context():
        clear_tables()
        seed()
        db.session.remove()
    # Logging out (DELETE /sessions) and HQ's user routes revoke tokens: the fuzz would log its own caller out
    # part-way and spend the rest of its examples on 401s. Revocation has its own tests
    # (tests/web_security/test_revocation.py); here every route still runs, the version simply stays put.
    from app.accounts import revocation

    monkeypatch.setattr(revocation, "bump", lambda user_id: None)
    real_enqueue = jobs.enqueue
    monkeypatch.setattr(jobs, "enqueue", lambda path, *args, **kwargs: None
                        if path == "app.codes.services.generate_batch" else real_enqueue(path, *args, **kwargs))
    yield
    with app.app_context():
        db.session.remove()


def _describe(label: str, check, interaction) -> str:
    info = check.failure_info
    response = interaction.response if interaction is not None else None
    lines = [f"{label}: {check.name}"]
    if info is not None:
        lines.append(f"  {info.failure.title}: {info.failure.message[:400]}")
    if response is not None:
        lines.append(f"  answered {response.status_code}: {response.content[:300]!r}")
    if info is not None:
        lines.append("  " + info.code_sample[:800].replace("\n", "\n  "))
    return "\n".join(lines)


def run_schemathesis(app, headers: dict[str, str], *, everything: bool = True) -> tuple[list[str], int, Counter]:
    """Every operation through every phase; returns (failures, operations tested, answers by status)."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=_config(headers, everything=everything))
    failures: list[str] = []
    labels: set[str] = set()
    statuses: Counter = Counter()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            labels.add(event.recorder.label)
            statuses.update(i.response.status_code for i in event.recorder.interactions.values() if i.response)
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status != Status.SUCCESS:
                        failures.append(_describe(event.recorder.label, check,
                                                  event.recorder.interactions.get(case_id)))
        elif isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: error while testing: {event.info.title}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            failures.append(f"schemathesis stopped: {event.exception!r}")
    return failures, len(labels), statuses


@pytest.mark.parametrize("caller", ["hq_admin"] if ON_POSTGRES else list(CALLERS))
def test_schemathesis_finds_nothing(app, client, fresh_demo, caller):
    headers = CALLERS[caller](client)
    failures, operations, statuses = run_schemathesis(app, headers, everything=caller == "hq_admin")
    print(f"\nschemathesis as {caller}: {operations} operations, {sum(statuses.values())} requests, "
          f"answers {dict(sorted(statuses.items()))}")
    unique = list(dict.fromkeys(failures))
    assert not unique, f"schemathesis as {caller}: {len(unique)} failure(s)\n\n" + "\n\n".join(unique[:30])
    documented = sum(1 for item in client.get("/api/openapi.json").get_json()["paths"].values()
                     for method in item if method in {"get", "post", "put", "patch", "delete"})
    assert operations == documented, (operations, documented)
    assert sum(statuses.values()) > operations * MAX_EXAMPLES
    assert sum(n for status, n in statuses.items() if status < 300) > operations, "the fuzz barely got past errors"
