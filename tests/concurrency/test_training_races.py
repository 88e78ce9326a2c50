"""The quiz's attempt limit under real concurrency (the server as `scripts/run` starts it, either engine): five
attempts at once on a course allowing three make exactly three attempts, numbered 1..3; the rest are refused."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.training.models import QuizAttempt
from tests.concurrency.clients import Call, fire


def test_five_attempts_at_once_on_a_limit_of_three_make_three(live_server):
    hq = live_server.hq_login()
    d1 = live_server.login("demo_distributor")
    made = live_server.request("POST", "/api/hq/v1/courses", {
        "title": "并发测验", "audience_roles": ["distributor_staff"], "audience_regions": ["330100"],
        "lessons": [{"kind": "document", "title": "手册", "url": "https://example.com/m.pdf"}],
        "quiz": [{"text": "题", "kind": "single", "options": [{"text": "对", "correct": True}, {"text": "错"}]}],
        "pass_mark": 100, "max_attempts": 3}, headers=hq)
    assert made.status == 201, made.body
    course = made.body
    opened = live_server.request("POST", f"/api/mp/v1/courses/{course['id']}/progress",
                                 {"lesson_id": course["lessons"][0]["id"], "event": "opened"}, headers=d1)
    assert opened.status == 200, opened.body
    wrong = {"answers": [{"question_id": 1, "option_ids": [2]}]}
    calls = [Call("POST", f"/api/mp/v1/courses/{course['id']}/quiz-attempts", wrong, tuple(d1.items()))
             for _ in range(5)]
    replies = fire(live_server.base_url, calls, processes=2)
    assert sorted(r.status for r in replies) == [201, 201, 201, 409, 409], [(r.status, r.body) for r in replies]
    assert {r.error_code for r in replies if r.status == 409} <= {"attempts_exhausted", "attempt_busy"}
    with live_server.db():
        numbers = sorted(db.session.scalars(sa.select(QuizAttempt.attempt_no).where(
            QuizAttempt.course_id == course["id"])))
    assert numbers == [1, 2, 3]
