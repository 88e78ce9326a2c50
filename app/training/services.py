"""Writing training: HQ sets courses up; a learner's client reports lesson events and submits quiz attempts.

Every write is one `transaction()`. A content change (lessons or quiz) raises the course's version under a
compare-and-set on the version read; completions and attempts keep the version they were made on.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from app.accounts.roles import ROLE_NAMES
from app.core import regions as region_data
from app.core.clock import as_utc, now_utc
from app.core.db import dialect_insert
from app.core.security import Principal, authorize_action
from app.core.tx import transaction
from app.errors import Conflict, NotFound, ValidationFailed
from app.extensions import db
from app.training.audience import LEARNER_ROLES
from app.training.models import (
    LESSON_KINDS,
    QUESTION_KINDS,
    Course,
    CourseCompletion,
    LessonProgress,
    QuizAttempt,
)
from app.training.models import Lesson as LessonRow
from app.training.queries import current_lessons, learner_course, lessons_done

VIDEO_DONE_PERCENT = 90
PARTNER_LEVELS = ("standard", "silver", "gold", "platinum")
LIVE_EARLY_MINUTES = 15  # "attended" counts from this long before a live session starts


def _bad(message: str, code: str, field: str | None = None) -> ValidationFailed:
    return ValidationFailed(message, code=code, details={"fields": {field: [message]}} if field else {})


# --- HQ: courses ----------------------------------------------------------------------------------------------

def _clean_audience(levels: list[str], regions: list[str], roles: list[str]) -> tuple[list, list, list]:
    for level in levels:
        if level not in PARTNER_LEVELS:
            raise _bad(f"伙伴等级只能是 {'、'.join(PARTNER_LEVELS)}", "invalid_level", "audience_levels")
    for code in regions:
        if not region_data.is_valid(code):
            raise _bad(f"找不到地区 {code}", "invalid_region", "audience_regions")
    for role in roles:
        if role not in LEARNER_ROLES:
            raise _bad(f"学员角色只能是{'、'.join(ROLE_NAMES[r] for r in LEARNER_ROLES)}", "invalid_role",
                       "audience_roles")
    return sorted(set(levels)), sorted(set(regions)), sorted(set(roles))


def _clean_lesson(raw: dict[str, Any]) -> dict[str, Any]:
    kind = raw.get("kind")
    if kind not in LESSON_KINDS:
        raise _bad("课时类型只能是直播、录播视频或文档", "invalid_lesson_kind", "lessons")
    title = (raw.get("title") or "").strip()
    url = (raw.get("url") or "").strip()
    if not title:
        raise _bad("请填写课时名称", "lesson_title_required", "lessons")
    if not url.startswith(("https://", "http://")):
        raise _bad("课时链接要以 https:// 或 http:// 开头", "invalid_lesson_url", "lessons")
    starts_at = raw.get("starts_at")
    duration = raw.get("duration_seconds")
    if kind == "live" and starts_at is None:
        raise _bad("直播课时要填开始时间", "live_start_required", "lessons")
    if kind == "video" and not (isinstance(duration, int) and duration >= 1):
        raise _bad("录播视频要填时长（秒，大于 0）", "video_duration_required", "lessons")
    return {"id": raw.get("id"), "kind": kind, "title": title[:100], "url": url[:500],
            "starts_at": as_utc(starts_at) if kind == "live" else None,
            "duration_seconds": duration if kind == "video" else None}


def _clean_quiz(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for n, q in enumerate(questions, start=1):
        text = (q.get("text") or "").strip()
        kind = q.get("kind")
        options = q.get("options") or []
        if not text:
            raise _bad(f"第 {n} 题没有题目", "question_text_required", "quiz")
        if kind not in QUESTION_KINDS:
            raise _bad(f"第 {n} 题的类型只能是单选或多选", "invalid_question_kind", "quiz")
        if not 2 <= len(options) <= 10:
            raise _bad(f"第 {n} 题要有 2 到 10 个选项", "invalid_options", "quiz")
        correct = [i for i, o in enumerate(options, start=1) if o.get("correct")]
        if not correct or (kind == "single" and len(correct) != 1):
            raise _bad(f"第 {n} 题{'要有且只有一个' if kind == 'single' else '至少要有一个'}正确选项",
                       "invalid_answer_key", "quiz")
        if any(not (o.get("text") or "").strip() for o in options):
            raise _bad(f"第 {n} 题有空的选项", "option_text_required", "quiz")
        out.append({"id": n, "text": text[:500], "kind": kind,
                    "options": [{"id": i, "text": o["text"].strip()[:200]} for i, o in enumerate(options, start=1)],
                    "answer": correct})
    return out


def _check_course(required: bool, due_date: date | None, pass_mark: int, max_attempts: int,
                  valid_days: int | None) -> None:
    if required and due_date is None:
        raise _bad("必修课要填截止日期", "due_date_required", "due_date")
    if not 0 <= pass_mark <= 100:
        raise _bad("及格线是 0 到 100 之间的百分数", "invalid_pass_mark", "pass_mark")
    if not 1 <= max_attempts <= 100:
        raise _bad("答题次数上限要在 1 到 100 之间", "invalid_max_attempts", "max_attempts")
    if valid_days is not None and not 1 <= valid_days <= 3650:
        raise _bad("有效天数要在 1 到 3650 之间", "invalid_valid_days", "valid_days")


def create_course(principal: Principal, *, title: str, description: str = "", required: bool = False,
                  due_date: date | None = None, valid_days: int | None = None, audience_levels: list | None = None,
                  audience_regions: list | None = None, audience_roles: list | None = None,
                  lessons: list | None = None, quiz: list | None = None, pass_mark: int = 60,
                  max_attempts: int = 3, active: bool = True) -> Course:
    """A new course at version 1 (HQ writers only)."""
    authorize_action(principal, "hq.write")
    title = (title or "").strip()
    if not title:
        raise _bad("请填写课程名称", "title_required", "title")
    _check_course(required, due_date, pass_mark, max_attempts, valid_days)
    levels, regions, roles = _clean_audience(audience_levels or [], audience_regions or [], audience_roles or [])
    clean_lessons = [_clean_lesson(raw) for raw in lessons or []]
    if any(item["id"] is not None for item in clean_lessons):
        raise _bad("新课程的课时不能带编号", "unknown_lesson", "lessons")
    clean_quiz = _clean_quiz(quiz or [])
    if not clean_lessons and not clean_quiz:
        raise _bad("课程至少要有一个课时或一道题", "course_empty", "lessons")
    with transaction():
        course = Course(title=title[:100], description=(description or "").strip()[:2000], required=required,
                        due_date=due_date if required else None, valid_days=valid_days, audience_levels=levels,
                        audience_regions=regions, audience_roles=roles, quiz=clean_quiz, pass_mark=pass_mark,
                        max_attempts=max_attempts, version=1, active=active, created_by_id=principal.user_id)
        db.session.add(course)
        db.session.flush()
        for position, item in enumerate(clean_lessons):
            db.session.add(LessonRow(course_id=course.id, position=position, added_in_version=1,
                                     **{k: v for k, v in item.items() if k != "id"}))
        db.session.flush()
        return course


def _lesson_key(item: dict[str, Any] | LessonRow) -> tuple:
    get = item.get if isinstance(item, dict) else lambda k: getattr(item, k)
    starts = get("starts_at")
    return (get("kind"), get("title"), get("url"), as_utc(starts) if starts else None, get("duration_seconds"))


_SETTINGS = ("title", "description", "required", "due_date", "valid_days", "pass_mark", "max_attempts", "active")


def update_course(principal: Principal, course_id: int, *, expected_version: int | None = None,
                  **changes: Any) -> Course:
    """Change a course. New `lessons` (the whole list: an item with `id` keeps that lesson, one without is new, a
    lesson left out leaves the course) or a new `quiz` raise the version; settings and audience do not."""
    authorize_action(principal, "hq.write")
    with transaction():
        course = db.session.scalar(sa.select(Course).where(Course.id == course_id).with_for_update())
        if course is None:
            raise NotFound("找不到这门课程", code="course_not_found")
        read_version = course.version
        if expected_version is not None and expected_version != read_version:
            raise Conflict("课程已被别人改过，请刷新后再改", code="course_changed",
                           details={"version": read_version})
        for key in _SETTINGS:
            if key in changes and changes[key] is not None:
                value = changes[key].strip() if isinstance(changes[key], str) else changes[key]
                setattr(course, key, value)
        if "valid_days" in changes:
            course.valid_days = changes["valid_days"]
        if "due_date" in changes:
            course.due_date = changes["due_date"]
        if not course.title:
            raise _bad("请填写课程名称", "title_required", "title")
        _check_course(course.required, course.due_date, course.pass_mark, course.max_attempts, course.valid_days)
        if not course.required:
            course.due_date = None
        if any(k in changes and changes[k] is not None
               for k in ("audience_levels", "audience_regions", "audience_roles")):
            course.audience_levels, course.audience_regions, course.audience_roles = _clean_audience(
                changes.get("audience_levels") if changes.get("audience_levels") is not None
                else course.audience_levels,
                changes.get("audience_regions") if changes.get("audience_regions") is not None
                else course.audience_regions,
                changes.get("audience_roles") if changes.get("audience_roles") is not None
                else course.audience_roles)
        content_changed = False
        new_version = read_version + 1
        if changes.get("quiz") is not None:
            clean_quiz = _clean_quiz(changes["quiz"])
            if clean_quiz != course.quiz:
                course.quiz = clean_quiz
                content_changed = True
        lessons_now = current_lessons(course.id)
        if changes.get("lessons") is not None:
            clean = [_clean_lesson(raw) for raw in changes["lessons"]]
            by_id = {lesson.id: lesson for lesson in lessons_now}
            kept = [item["id"] for item in clean if item["id"] is not None]
            if len(kept) != len(set(kept)) or any(i not in by_id for i in kept):
                raise _bad("课时编号不属于这门课程", "unknown_lesson", "lessons")
            before = [(lesson.id, _lesson_key(lesson)) for lesson in lessons_now]
            after = [(item["id"], _lesson_key(item)) for item in clean]
            if before != after:
                content_changed = True
                for lesson in lessons_now:
                    if lesson.id not in kept:
                        lesson.removed_in_version = new_version
                for position, item in enumerate(clean):
                    fields = {k: v for k, v in item.items() if k != "id"}
                    if item["id"] is None:
                        db.session.add(LessonRow(course_id=course.id, position=position,
                                                 added_in_version=new_version, **fields))
                    else:
                        row = by_id[item["id"]]
                        row.position = position
                        for k, v in fields.items():
                            setattr(row, k, v)
            lessons_now = clean
        if not lessons_now and not course.quiz:
            raise _bad("课程至少要有一个课时或一道题", "course_empty", "lessons")
        course.updated_at = now_utc()
        # The compare-and-set on the version read (PostgreSQL holds the row lock too; SQLite the whole database).
        if content_changed:
            if db.session.execute(
                    sa.update(Course).where(Course.id == course.id, Course.version == read_version)
                    .values(version=new_version).execution_options(synchronize_session=False)).rowcount != 1:
                raise Conflict("课程已被别人改过，请刷新后再改", code="course_changed")
            course.version = new_version
        db.session.flush()
        return course


# --- learners: progress -------------------------------------------------------------------------------------

EVENTS = {"video": ("progress",), "live": ("attended",), "document": ("opened",)}


def _complete_if_done(user_id: int, course: Course) -> None:
    """Record the completion of the course's current version once its lessons are done and its quiz passed."""
    done, total = lessons_done(user_id, course.id)
    if done < total:
        return
    if course.quiz and not db.session.scalar(sa.select(sa.exists().where(
            QuizAttempt.user_id == user_id, QuizAttempt.course_id == course.id,
            QuizAttempt.version == course.version, QuizAttempt.passed.is_(True)))):
        return
    now = now_utc()
    expires = now + timedelta(days=course.valid_days) if course.valid_days else None
    db.session.execute(dialect_insert()(CourseCompletion).values(
        user_id=user_id, course_id=course.id, version=course.version, completed_at=now, expires_at=expires)
        .on_conflict_do_nothing(index_elements=["user_id", "course_id", "version"]))


def record_progress(principal: Principal, course_id: int, *, lesson_id: int, event: str,
                    percent: int | None = None, position_seconds: int | None = None) -> dict[str, Any]:
    """A client's event on a lesson: a video's `progress` (percent, or position in seconds), a live session
    `attended`, a document `opened`. Idempotent: a repeat (or a video reported less far) changes nothing."""
    with transaction():
        course = learner_course(principal, course_id)
        lesson = db.session.scalar(sa.select(LessonRow).where(
            LessonRow.id == lesson_id, LessonRow.course_id == course.id, LessonRow.removed_in_version.is_(None)))
        if lesson is None:
            raise _bad("这门课程里没有这个课时", "lesson_not_in_course", "lesson_id")
        if event not in EVENTS[lesson.kind]:
            raise _bad(f"这个课时是{ {'video': '录播视频', 'live': '直播', 'document': '文档'}[lesson.kind] }，"
                       f"只能上报 {'、'.join(EVENTS[lesson.kind])}", "event_not_for_lesson", "event")
        now = now_utc()
        if lesson.kind == "video":
            if percent is None and position_seconds is None:
                raise _bad("请上报观看进度（百分比或秒数）", "progress_required", "percent")
            if percent is None:
                percent = min(100, position_seconds * 100 // max(lesson.duration_seconds or 1, 1))
            if not 0 <= percent <= 100:
                raise _bad("观看进度是 0 到 100 之间的百分数", "invalid_percent", "percent")
        else:
            if lesson.kind == "live" and lesson.starts_at is not None and \
                    now < as_utc(lesson.starts_at) - timedelta(minutes=LIVE_EARLY_MINUTES):
                raise Conflict("直播还没开始，开始后再签到", code="live_not_started")
            percent = 100
        done = percent >= VIDEO_DONE_PERCENT
        db.session.execute(dialect_insert()(LessonProgress).values(
            user_id=principal.user_id, course_id=course.id, lesson_id=lesson.id, percent=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["user_id", "lesson_id"]))
        row = db.session.scalar(sa.select(LessonProgress).where(
            LessonProgress.user_id == principal.user_id, LessonProgress.lesson_id == lesson.id).with_for_update())
        if percent > row.percent:
            row.percent, row.updated_at = percent, now
        if done and row.done_at is None:
            row.done_at = now
            db.session.flush()
            _complete_if_done(principal.user_id, course)
        db.session.flush()
        return {"lesson_id": lesson.id, "percent": row.percent, "done": row.done_at is not None,
                "done_at": row.done_at}


# --- learners: the quiz --------------------------------------------------------------------------------------

def _score(quiz: list[dict[str, Any]], answers: list[dict[str, Any]]) -> tuple[int, dict[str, list[int]]]:
    by_id = {q["id"]: q for q in quiz}
    given: dict[str, list[int]] = {}
    for a in answers:
        qid, picked = a.get("question_id"), a.get("option_ids") or []
        question = by_id.get(qid)
        if question is None:
            raise _bad(f"没有第 {qid} 题", "unknown_question", "answers")
        if str(qid) in given:
            raise _bad(f"第 {qid} 题答了两次", "duplicate_answer", "answers")
        options = {o["id"] for o in question["options"]}
        if len(set(picked)) != len(picked) or not set(picked) <= options:
            raise _bad(f"第 {qid} 题的选项不对", "unknown_option", "answers")
        if question["kind"] == "single" and len(picked) > 1:
            raise _bad(f"第 {qid} 题是单选题，只能选一个", "single_choice", "answers")
        given[str(qid)] = sorted(picked)
    correct = sum(1 for q in quiz if given.get(str(q["id"])) == sorted(q["answer"]))
    return correct, given


def attempt_quiz(principal: Principal, course_id: int, *, answers: list[dict[str, Any]]) -> QuizAttempt:
    """Score an attempt on the server at the course's current version: only once every lesson is done, at most
    `max_attempts` per version (the unique attempt number settles two at once), none after a pass."""
    for _ in range(3):
        try:
            return _attempt(principal, course_id, answers)
        except sa.exc.IntegrityError:
            continue  # another attempt took this number: read again (the limit may now be reached)
    raise Conflict("提交太频繁了，请稍后再试", code="attempt_busy")


def _attempt(principal: Principal, course_id: int, answers: list[dict[str, Any]]) -> QuizAttempt:
    with transaction():
        course = learner_course(principal, course_id)
        if not course.quiz:
            raise Conflict("这门课程没有测验", code="no_quiz")
        done, total = lessons_done(principal.user_id, course.id)
        if done < total:
            raise Conflict(f"先学完全部课时再答题（已完成 {done}/{total}）", code="lessons_not_done",
                           details={"done": done, "total": total})
        correct, given = _score(course.quiz, answers)
        rows = db.session.execute(sa.select(QuizAttempt.attempt_no, QuizAttempt.passed).where(
            QuizAttempt.user_id == principal.user_id, QuizAttempt.course_id == course.id,
            QuizAttempt.version == course.version)).all()
        if any(passed for _, passed in rows):
            raise Conflict("测验已经通过了", code="quiz_already_passed")
        used = max((n for n, _ in rows), default=0)
        if used >= course.max_attempts:
            raise Conflict(f"答题次数已用完（最多 {course.max_attempts} 次）", code="attempts_exhausted",
                           details={"max_attempts": course.max_attempts})
        total_q = len(course.quiz)
        score = correct * 100 // total_q
        attempt = QuizAttempt(user_id=principal.user_id, course_id=course.id, version=course.version,
                              attempt_no=used + 1, answers={"given": given}, correct=correct, total=total_q,
                              score=score, passed=score >= course.pass_mark, created_at=now_utc())
        db.session.add(attempt)
        db.session.flush()
        if attempt.passed:
            _complete_if_done(principal.user_id, course)
            db.session.flush()
        return attempt

