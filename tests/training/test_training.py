"""Training (CHANNEL.md §7): audience, progress events, the quiz and its limit, completions tied to a version,
what is due first, training rates, reminders, HQ only writes, and bad input never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.channel.models import Partner
from app.core.clock import today_business
from app.demo.training import TITLE
from app.extensions import db
from app.training import notices
from app.training.models import Course, CourseCompletion, QuizAttempt, TrainingNotice
from app.training.queries import training_rates
from tests.conftest import hq_login, mp_login

MP, HQ = "/api/mp/v1", "/api/hq/v1"
RIGHT = [{"question_id": 1, "option_ids": [2]}, {"question_id": 2, "option_ids": [1, 2]}]
WRONG = [{"question_id": 1, "option_ids": [1]}, {"question_id": 2, "option_ids": [3]}]


@pytest.fixture()
def who(client, demo):
    return {"d1": mp_login(client, "demo_distributor"), "d2": mp_login(client, "demo_distributor_2"),
            "a1": mp_login(client, "demo_agent"), "owner": mp_login(client, "demo_store_owner"),
            "admin": hq_login(client), "analyst": hq_login(client, "analyst")}


def _demo_course(client, who) -> dict:
    items = client.get(f"{MP}/courses", headers=who["d1"]).get_json()["items"]
    course = next(c for c in items if c["title"] == TITLE)
    return client.get(f"{MP}/courses/{course['id']}", headers=who["d1"]).get_json()


def _course(client, who, **over) -> dict:
    body = {"title": "测试课程", "audience_roles": ["distributor_staff"], "audience_regions": ["330000"],
            "lessons": [{"kind": "document", "title": "手册", "url": "https://example.com/a.pdf"}],
            "quiz": [{"text": "一加一", "kind": "single", "options": [{"text": "1"}, {"text": "2", "correct": True}]}],
            "pass_mark": 100, "max_attempts": 2, **over}
    resp = client.post(f"{HQ}/courses", json=body, headers=who["admin"])
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _open_all(client, who, course: dict, actor: str = "d1") -> None:
    for lesson in course["lessons"]:
        event = {"video": {"event": "progress", "percent": 100}, "document": {"event": "opened"},
                 "live": {"event": "attended"}}[lesson["kind"]]
        resp = client.post(f"{MP}/courses/{course['id']}/progress", json={"lesson_id": lesson["id"], **event},
                           headers=who[actor])
        assert resp.status_code == 200, resp.get_json()


# --- audience and the answer key --------------------------------------------------------------------------

def test_the_demo_course_is_d1s_and_never_shows_the_answers(client, who):
    course = _demo_course(client, who)
    assert course["required"] and course["lessons_done"] == 1 and course["lessons_total"] == 2
    assert course["status"] == "in_progress" and not course["quiz_open"]
    assert [q["id"] for q in course["quiz_questions"]] == [1, 2]
    text = str(client.get(f"{MP}/courses/{course['id']}", headers=who["d1"]).get_json())
    assert "answer" not in text and "correct" not in text
    # D2 (Shenzhen), the agent (not a distributor's staff) and a store owner: not theirs.
    for actor in ("d2", "a1", "owner"):
        assert all(c["id"] != course["id"]
                   for c in client.get(f"{MP}/courses", headers=who[actor]).get_json()["items"])
        resp = client.get(f"{MP}/courses/{course['id']}", headers=who[actor])
        assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "course_not_for_you", actor
    # HQ staff take no courses on the mini-program.
    assert client.get(f"{MP}/courses", headers=who["admin"]).status_code == 403


def test_a_region_includes_its_children_and_levels_narrow(client, who, app):
    zhejiang = _course(client, who, title="浙江", audience_regions=["330000"])
    hangzhou = _course(client, who, title="杭州", audience_regions=["330100"])
    ningbo = _course(client, who, title="宁波", audience_regions=["330200"])
    gold = _course(client, who, title="金牌", audience_regions=[], audience_levels=["gold"])
    seen = {c["id"] for c in client.get(f"{MP}/courses", headers=who["d1"]).get_json()["items"]}
    assert {zhejiang["id"], hangzhou["id"]} <= seen and not {ningbo["id"], gold["id"]} & seen
    with app.app_context():
        db.session.execute(sa.update(Partner).where(Partner.code == "D1").values(level="gold"))
        db.session.commit()
    seen = {c["id"] for c in client.get(f"{MP}/courses", headers=who["d1"]).get_json()["items"]}
    assert gold["id"] in seen


def test_store_roles_can_be_the_audience(client, who):
    course = _course(client, who, title="店主课", audience_roles=["store_owner"], audience_regions=["330106"])
    assert client.get(f"{MP}/courses/{course['id']}", headers=who["owner"]).status_code == 200
    assert client.get(f"{MP}/courses/{course['id']}", headers=who["d1"]).status_code == 403


# --- progress events ----------------------------------------------------------------------------------------

def test_video_done_at_90_percent_and_events_are_idempotent(client, who):
    course = _demo_course(client, who)
    video_course = _course(client, who, title="视频课", lessons=[
        {"kind": "video", "title": "视频", "url": "https://example.com/v.mp4", "duration_seconds": 200}])
    path = f"{MP}/courses/{video_course['id']}/progress"
    lesson = video_course["lessons"][0]["id"]
    body = client.post(path, json={"lesson_id": lesson, "event": "progress", "percent": 50},
                       headers=who["d1"]).get_json()
    assert body["percent"] == 50 and not body["done"]
    again = client.post(path, json={"lesson_id": lesson, "event": "progress", "percent": 50},
                        headers=who["d1"]).get_json()
    assert again == body
    body = client.post(path, json={"lesson_id": lesson, "event": "progress", "position_seconds": 179},
                       headers=who["d1"]).get_json()
    assert body["percent"] == 89 and not body["done"]
    done = client.post(path, json={"lesson_id": lesson, "event": "progress", "position_seconds": 180},
                       headers=who["d1"]).get_json()
    assert done["done"] and done["percent"] == 90 and done["course"]["quiz_open"]
    back = client.post(path, json={"lesson_id": lesson, "event": "progress", "percent": 10},
                       headers=who["d1"]).get_json()
    assert back["done"] and back["percent"] == 90 and back["done_at"] == done["done_at"]
    # A lesson of another course, a wrong event for the kind, a video without a position.
    other = course["lessons"][1]["id"]
    for payload, code in [({"lesson_id": other, "event": "opened"}, "lesson_not_in_course"),
                          ({"lesson_id": lesson, "event": "opened"}, "event_not_for_lesson"),
                          ({"lesson_id": lesson, "event": "progress"}, "progress_required")]:
        resp = client.post(path, json=payload, headers=who["d1"])
        assert resp.status_code == 422 and resp.get_json()["error"]["code"] == code, payload
        assert resp.get_json()["error"]["message"]


def test_a_live_session_is_attended_from_its_start(client, who):
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    course = _course(client, who, title="直播课", lessons=[
        {"kind": "live", "title": "直播", "url": "https://example.com/live", "starts_at": soon}])
    path = f"{MP}/courses/{course['id']}/progress"
    resp = client.post(path, json={"lesson_id": course["lessons"][0]["id"], "event": "attended"}, headers=who["d1"])
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "live_not_started"
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    client.patch(f"{HQ}/courses/{course['id']}", json={"lessons": [
        {"id": course["lessons"][0]["id"], "kind": "live", "title": "直播", "url": "https://example.com/live",
         "starts_at": past}]}, headers=who["admin"])
    resp = client.post(path, json={"lesson_id": course["lessons"][0]["id"], "event": "attended"}, headers=who["d1"])
    assert resp.status_code == 200 and resp.get_json()["done"]


@pytest.mark.parametrize("payload", [
    {}, {"lesson_id": "x", "event": "opened"}, {"lesson_id": 1, "event": "watch"}, {"lesson_id": 0, "event": "opened"},
    {"lesson_id": 1, "event": "progress", "percent": 150}, {"lesson_id": 1, "event": "progress", "percent": 1.5},
    {"lesson_id": 1, "event": "opened", "extra": 1}, [], "x"])
def test_bad_progress_bodies_are_422_never_500(client, who, payload):
    course = _demo_course(client, who)
    resp = client.post(f"{MP}/courses/{course['id']}/progress", json=payload, headers=who["d1"])
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["message"]


def test_unknown_course_is_404(client, who):
    resp = client.get(f"{MP}/courses/987654", headers=who["d1"])
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "course_not_found"


# --- the quiz ----------------------------------------------------------------------------------------------

def test_no_quiz_before_the_lessons_then_scored_on_the_server_within_the_limit(client, who, app):
    course = _demo_course(client, who)
    path = f"{MP}/courses/{course['id']}/quiz-attempts"
    resp = client.post(path, json={"answers": RIGHT}, headers=who["d1"])
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "lessons_not_done"
    _open_all(client, who, course)
    # A score from the client is refused (the server scores).
    assert client.post(path, json={"answers": RIGHT, "score": 100}, headers=who["d1"]).status_code == 422
    first = client.post(path, json={"answers": WRONG}, headers=who["d1"]).get_json()
    assert first["score"] == 0 and not first["passed"] and first["attempts_left"] == 2
    half = client.post(path, json={"answers": RIGHT[:1]}, headers=who["d1"]).get_json()
    assert half["score"] == 50 and not half["passed"] and half["attempt_no"] == 2
    third = client.post(path, json={"answers": WRONG}, headers=who["d1"]).get_json()
    assert third["attempt_no"] == 3 and third["attempts_left"] == 0
    resp = client.post(path, json={"answers": RIGHT}, headers=who["d1"])
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "attempts_exhausted"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(QuizAttempt.id))) == 3


@pytest.mark.parametrize("answers,code", [
    ([{"question_id": 9, "option_ids": [1]}], "unknown_question"),
    ([{"question_id": 1, "option_ids": [7]}], "unknown_option"),
    ([{"question_id": 1, "option_ids": [1, 2]}], "single_choice"),
    ([{"question_id": 1, "option_ids": [2]}, {"question_id": 1, "option_ids": [2]}], "duplicate_answer")])
def test_bad_answers_are_refused_and_cost_no_attempt(client, who, app, answers, code):
    course = _demo_course(client, who)
    _open_all(client, who, course)
    resp = client.post(f"{MP}/courses/{course['id']}/quiz-attempts", json={"answers": answers}, headers=who["d1"])
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == code
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(QuizAttempt.id))) == 0


def test_completion_is_tied_to_the_version_it_was_earned_on(client, who, app):
    course = _demo_course(client, who)
    _open_all(client, who, course)
    passed = client.post(f"{MP}/courses/{course['id']}/quiz-attempts", json={"answers": RIGHT},
                         headers=who["d1"]).get_json()
    assert passed["passed"] and passed["course"]["completed"] and passed["course"]["completed_version"] == 1
    again = client.post(f"{MP}/courses/{course['id']}/quiz-attempts", json={"answers": RIGHT}, headers=who["d1"])
    assert again.get_json()["error"]["code"] == "quiz_already_passed"
    # A settings change keeps the version; a quiz change raises it; the completion stays on version 1.
    resp = client.patch(f"{HQ}/courses/{course['id']}", json={"description": "新的介绍"}, headers=who["admin"])
    assert resp.get_json()["version"] == 1
    new_quiz = [{"text": "新题", "kind": "multiple", "options": [{"text": "对", "correct": True}, {"text": "错"}]}]
    resp = client.patch(f"{HQ}/courses/{course['id']}", json={"quiz": new_quiz}, headers=who["admin"])
    assert resp.status_code == 200 and resp.get_json()["version"] == 2
    mine = client.get(f"{MP}/courses/{course['id']}", headers=who["d1"]).get_json()
    assert mine["version"] == 2 and mine["completed"] and mine["completed_version"] == 1
    assert mine["attempts_used"] == 0 and mine["quiz_open"]  # the new version's quiz is open to retake
    # Adding a lesson raises it again; the kept lessons keep their learners' progress.
    lessons = [{k: v for k, v in lesson.items() if k in ("id", "kind", "title", "url", "duration_seconds")}
               for lesson in course["lessons"]]
    lessons.append({"kind": "document", "title": "补充资料", "url": "https://example.com/more.pdf"})
    resp = client.patch(f"{HQ}/courses/{course['id']}", json={"lessons": lessons}, headers=who["admin"])
    assert resp.get_json()["version"] == 3
    mine = client.get(f"{MP}/courses/{course['id']}", headers=who["d1"]).get_json()
    assert (mine["lessons_done"], mine["lessons_total"]) == (2, 3) and mine["completed_version"] == 1
    progress = client.get(f"{HQ}/courses/{course['id']}/progress", headers=who["analyst"]).get_json()
    learner = next(x for x in progress["learners"] if x["display_name"] == "张经理")
    assert learner["completed_version"] == 1 and learner["lessons_done"] == 2
    assert progress["partners"] == [{"partner_id": learner["partner_ids"][0], "partner_name": "杭州西湖分销",
                                     "completed": 1, "staff": 1, "rate": 1.0}]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(CourseCompletion.id))) == 1
    # A stale expected_version is refused.
    resp = client.patch(f"{HQ}/courses/{course['id']}", json={"quiz": new_quiz, "expected_version": 1},
                        headers=who["admin"])
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "course_changed"


# --- what is due first ---------------------------------------------------------------------------------------

def test_the_list_shows_what_is_due_first(client, who):
    today = today_business()
    late = _course(client, who, title="已逾期", required=True, due_date=(today - timedelta(days=2)).isoformat())
    later = _course(client, who, title="下月截止", required=True, due_date=(today + timedelta(days=30)).isoformat())
    optional = _course(client, who, title="选修")
    items = client.get(f"{MP}/courses", headers=who["d1"]).get_json()["items"]
    order = [c["title"] for c in items]
    assert order.index("已逾期") < order.index(TITLE) < order.index("下月截止") < order.index("选修")
    assert items[0]["id"] == late["id"] and items[0]["status"] == "overdue"
    assert {later["id"], optional["id"]} <= {c["id"] for c in items}


# --- training rates ----------------------------------------------------------------------------------------

def test_training_rates(client, who, app):
    course = _demo_course(client, who)
    with app.app_context():
        ids = dict(db.session.execute(sa.select(Partner.code, Partner.id)).all())
        due = db.session.get(Course, course["id"]).due_date
        everyone = list(ids.values())
        assert training_rates(everyone, due - timedelta(days=1)) == {}  # nothing due yet: nobody in the dict
        assert training_rates(everyone, due) == {ids["D1"]: (0, 1)}
        db.session.remove()
    _open_all(client, who, course)
    client.post(f"{MP}/courses/{course['id']}/quiz-attempts", json={"answers": RIGHT}, headers=who["d1"])
    with app.app_context():
        assert training_rates([ids["D1"], ids["D2"]], due) == {ids["D1"]: (1, 1)}
        assert training_rates([ids["D2"]], due) == {}
        assert training_rates([], due) == {}
        # The demo completion expires after 365 days.
        assert training_rates([ids["D1"]], today_business() + timedelta(days=400)) == {ids["D1"]: (0, 1)}
        # A completion made after `as_of` does not count for it.
        db.session.execute(sa.update(CourseCompletion).values(completed_at=datetime(2099, 1, 1, tzinfo=UTC)))
        db.session.commit()
        assert training_rates([ids["D1"]], due) == {ids["D1"]: (0, 1)}


def test_training_rates_count_staff_in_any_due_course(client, who, app):
    """Two due courses for D1 (the demo's and one for every Zhejiang distributor): met only with both."""
    today = today_business()
    extra = _course(client, who, title="浙江必修", required=True, due_date=today.isoformat())
    _open_all(client, who, extra)
    client.post(f"{MP}/courses/{extra['id']}/quiz-attempts",
                json={"answers": [{"question_id": 1, "option_ids": [2]}]}, headers=who["d1"])
    with app.app_context():
        ids = dict(db.session.execute(sa.select(Partner.code, Partner.id)).all())
        assert training_rates([ids["D1"], ids["D3"]], today) == {ids["D1"]: (1, 1)}  # D3 has no staff
        assert training_rates([ids["D1"]], today + timedelta(days=14)) == {ids["D1"]: (0, 1)}


# --- HQ writes, bad input ------------------------------------------------------------------------------------

def test_only_hq_admins_write_courses(client, who):
    body = {"title": "x", "lessons": [{"kind": "document", "title": "d", "url": "https://example.com/d"}]}
    for actor in ("d1", "analyst", "owner"):
        assert client.post(f"{HQ}/courses", json=body, headers=who[actor]).status_code == 403, actor
    course = _demo_course(client, who)
    assert client.patch(f"{HQ}/courses/{course['id']}", json={"title": "y"}, headers=who["d1"]).status_code == 403
    assert client.get(f"{HQ}/courses/{course['id']}/progress", headers=who["d1"]).status_code == 403
    assert client.patch(f"{HQ}/courses/987654", json={"title": "y"}, headers=who["admin"]).status_code == 404


@pytest.mark.parametrize("over,code", [
    ({"required": True}, "due_date_required"),
    ({"audience_regions": ["999999"]}, "invalid_region"),
    ({"lessons": [{"kind": "live", "title": "直播", "url": "https://example.com/l"}]}, "live_start_required"),
    ({"lessons": [{"kind": "video", "title": "视频", "url": "https://example.com/v"}]}, "video_duration_required"),
    ({"lessons": [{"kind": "document", "title": "文档", "url": "ftp://x"}]}, "invalid_lesson_url"),
    ({"lessons": [{"id": 5, "kind": "document", "title": "文档", "url": "https://x.cn"}]}, "unknown_lesson"),
    ({"quiz": [{"text": "q", "kind": "single", "options": [{"text": "a", "correct": True},
                                                           {"text": "b", "correct": True}]}]}, "invalid_answer_key"),
    ({"quiz": [{"text": "q", "kind": "multiple", "options": [{"text": "a"}, {"text": "b"}]}]}, "invalid_answer_key"),
    ({"lessons": [], "quiz": []}, "course_empty"),
])
def test_bad_courses_are_refused_with_a_code(client, who, over, code):
    body = {"title": "坏课程", "lessons": [{"kind": "document", "title": "d", "url": "https://example.com/d"}],
            **over}
    resp = client.post(f"{HQ}/courses", json=body, headers=who["admin"])
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == code, resp.get_json()


@pytest.mark.parametrize("body", [
    {}, {"title": ""}, {"title": "x", "pass_mark": 101}, {"title": "x", "max_attempts": 0},
    {"title": "x", "audience_roles": ["hq_admin"]}, {"title": "x", "audience_levels": ["diamond"]},
    {"title": "x", "lessons": [{"kind": "podcast", "title": "t", "url": "https://x"}]},
    {"title": "x", "due_date": "tomorrow"}, {"title": "x", "valid_days": -1}, {"title": "x", "quiz": "q"}])
def test_bad_course_bodies_are_422(client, who, body):
    resp = client.post(f"{HQ}/courses", json=body, headers=who["admin"])
    assert resp.status_code == 422, resp.get_json()


# --- reminders ------------------------------------------------------------------------------------------------

def test_reminders_go_once_per_user(client, who, app, fake_wechat):
    soon = (datetime.now(UTC) + timedelta(minutes=20)).isoformat()
    live = _course(client, who, title="直播预告", lessons=[
        {"kind": "live", "title": "开播", "url": "https://example.com/live", "starts_at": soon}])
    before = len(fake_wechat.state.messages)
    with app.app_context():
        assert notices.remind_live_sessions() == 1
        assert notices.remind_live_sessions() == 0
        # The demo course is due in 14 days: not yet; one due in 2 days is.
        assert notices.remind_due_courses() == 0
        db.session.remove()
    _course(client, who, title="快到期", required=True, due_date=(today_business() + timedelta(days=2)).isoformat())
    with app.app_context():
        assert notices.remind_due_courses() == 1
        assert notices.remind_due_courses() == 0
        kinds = sorted(db.session.scalars(sa.select(TrainingNotice.kind)))
        assert kinds == ["due_soon", "live_soon"]
    sent = fake_wechat.state.messages[before:]
    assert [m["touser"] for m in sent] == ["demo_distributor", "demo_distributor"]
    assert sent[0]["page"] == f"pages/training/course?id={live['id']}"


def test_demo_seed_step_twice_changes_nothing(app, demo):
    from app.demo import training as demo_training
    from app.demo.seed import DemoContext

    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count(Course.id)))
        demo_training.seed(DemoContext())
        assert db.session.scalar(sa.select(sa.func.count(Course.id))) == count == 1


def test_attempt_numbers_are_unique_per_version(app, demo):
    """The index that settles two attempts at once: a second row with the same number cannot be written."""
    with app.app_context():
        course = db.session.scalar(sa.select(Course))
        user_id = db.session.scalar(sa.text("SELECT id FROM users WHERE openid = 'demo_distributor'"))
        row = {"user_id": user_id, "course_id": course.id, "version": 1, "attempt_no": 1, "answers": {},
               "correct": 0, "total": 2, "score": 0, "passed": False}
        db.session.add(QuizAttempt(**row))
        db.session.commit()
        db.session.add(QuizAttempt(**row))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()


