"""Reading training: a learner's courses (what is due first), a course without its answer key, HQ's progress
report, and `training_rates` for the period close.

Rule of `training_rates(partner_ids, as_of)`: the courses that count are the active required courses whose due
date is on or before `as_of`. For each partner, its staff (partner roles bound to that partner, active users) in
the audience of at least one such course are counted; one of them has met the rule when, for every such course
whose audience they are in, they hold a completion (of any version: a content change does not undo what was
earned) made by the end of `as_of` and not expired by then. A partner none of whose staff is in the audience of
such a course is absent (nothing to measure: the assessment counts it as fully met).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app.accounts.models import User
from app.channel.models import Partner
from app.core.clock import as_utc, business_day_start, now_utc, today_business
from app.core.security import Principal, authorize_action
from app.errors import Forbidden, NotFound
from app.extensions import db
from app.training.audience import seat_in, seats, user_in
from app.training.models import Course, CourseCompletion, Lesson, LessonProgress, QuizAttempt


def current_lessons(course_id: int) -> list[Lesson]:
    return list(db.session.scalars(sa.select(Lesson).where(
        Lesson.course_id == course_id, Lesson.removed_in_version.is_(None)).order_by(Lesson.position, Lesson.id)))


def lessons_done(user_id: int, course_id: int) -> tuple[int, int]:
    """(lessons of the course's current content the user has done, lessons in it)."""
    total = db.session.scalar(sa.select(sa.func.count(Lesson.id)).where(
        Lesson.course_id == course_id, Lesson.removed_in_version.is_(None)))
    done = db.session.scalar(sa.select(sa.func.count(LessonProgress.id)).join(
        Lesson, Lesson.id == LessonProgress.lesson_id).where(
        LessonProgress.user_id == user_id, LessonProgress.course_id == course_id,
        LessonProgress.done_at.is_not(None), Lesson.removed_in_version.is_(None)))
    return done or 0, total or 0


def learner_course(principal: Principal, course_id: int) -> Course:
    """The course, if it is active and the caller is in its audience (else 404 / 403)."""
    authorize_action(principal, "course.take")
    course = db.session.get(Course, course_id)
    if course is None or not course.active:
        raise NotFound("找不到这门课程", code="course_not_found")
    if not user_in(course, seats(user_ids={principal.user_id})):
        raise Forbidden("这门课程不在你的培训范围内", code="course_not_for_you")
    return course


def _latest_completion(user_id: int, course_id: int) -> CourseCompletion | None:
    return db.session.scalar(sa.select(CourseCompletion).where(
        CourseCompletion.user_id == user_id, CourseCompletion.course_id == course_id)
        .order_by(CourseCompletion.version.desc()).limit(1))


def _state(user_id: int, course: Course, today: date, now: datetime) -> dict[str, Any]:
    done, total = lessons_done(user_id, course.id)
    attempts = db.session.execute(sa.select(QuizAttempt.attempt_no, QuizAttempt.passed, QuizAttempt.score).where(
        QuizAttempt.user_id == user_id, QuizAttempt.course_id == course.id,
        QuizAttempt.version == course.version).order_by(QuizAttempt.attempt_no)).all()
    completion = _latest_completion(user_id, course.id)
    valid = completion is not None and (completion.expires_at is None or as_utc(completion.expires_at) > now)
    if valid:
        status = "completed"
    elif course.required and course.due_date and course.due_date < today:
        status = "overdue"
    elif done or attempts:
        status = "in_progress"
    else:
        status = "not_started"
    return {"lessons_done": done, "lessons_total": total, "quiz": bool(course.quiz),
            "quiz_open": bool(course.quiz) and done >= total and not any(p for _, p, _ in attempts),
            "quiz_passed": any(p for _, p, _ in attempts), "attempts_used": len(attempts),
            "best_score": max((s for _, _, s in attempts), default=None),
            "completed": valid, "completed_version": completion.version if completion else None,
            "completed_at": completion.completed_at if completion else None,
            "expires_at": completion.expires_at if completion else None, "status": status}


def _summary(course: Course) -> dict[str, Any]:
    return {"id": course.id, "title": course.title, "description": course.description, "required": course.required,
            "due_date": course.due_date, "valid_days": course.valid_days, "version": course.version,
            "pass_mark": course.pass_mark, "max_attempts": course.max_attempts, "questions": len(course.quiz)}


def _due_order(item: dict[str, Any], today: date) -> tuple:
    """Overdue first (the longest overdue first), then the nearest due date, then optional; done ones last."""
    if item["completed"]:
        return (3, date.max, item["id"])
    if item["required"] and item["due_date"] is not None:
        return (0 if item["due_date"] < today else 1, item["due_date"], item["id"])
    return (2, date.max, item["id"])


def learner_courses(principal: Principal) -> list[dict[str, Any]]:
    """The active courses the caller is in the audience of, what is due first."""
    authorize_action(principal, "course.take")
    user_seats = seats(user_ids={principal.user_id})
    today, now = today_business(), now_utc()
    out = []
    for course in db.session.scalars(sa.select(Course).where(Course.active.is_(True)).order_by(Course.id)):
        if user_in(course, user_seats):
            out.append({**_summary(course), **_state(principal.user_id, course, today, now)})
    return sorted(out, key=lambda item: _due_order(item, today))


def _public_quiz(quiz: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The questions without the answer key."""
    return [{"id": q["id"], "text": q["text"], "kind": q["kind"], "options": q["options"]} for q in quiz]


def _lesson_out(lesson: Lesson, progress: LessonProgress | None = None) -> dict[str, Any]:
    return {"id": lesson.id, "kind": lesson.kind, "title": lesson.title, "url": lesson.url,
            "starts_at": lesson.starts_at, "duration_seconds": lesson.duration_seconds,
            "percent": progress.percent if progress else 0,
            "done": bool(progress and progress.done_at), "done_at": progress.done_at if progress else None}


def learner_course_detail(principal: Principal, course_id: int) -> dict[str, Any]:
    course = learner_course(principal, course_id)
    lessons = current_lessons(course.id)
    progress = {p.lesson_id: p for p in db.session.scalars(sa.select(LessonProgress).where(
        LessonProgress.user_id == principal.user_id, LessonProgress.course_id == course.id))}
    return {**_summary(course), **_state(principal.user_id, course, today_business(), now_utc()),
            "lessons": [_lesson_out(lesson, progress.get(lesson.id)) for lesson in lessons],
            "questions_list": _public_quiz(course.quiz)}


# --- HQ -------------------------------------------------------------------------------------------------------

def hq_courses(principal: Principal) -> list[dict[str, Any]]:
    authorize_action(principal, "hq.read")
    out = []
    for course in db.session.scalars(sa.select(Course).order_by(Course.active.desc(), Course.id.desc())):
        out.append({**_summary(course), "active": course.active, "lessons": len(current_lessons(course.id)),
                    "audience_levels": course.audience_levels, "audience_regions": course.audience_regions,
                    "audience_roles": course.audience_roles, "updated_at": course.updated_at})
    return out


def hq_course(principal: Principal, course_id: int) -> dict[str, Any]:
    """The course as HQ edits it, answer key included."""
    authorize_action(principal, "hq.read")
    course = db.session.get(Course, course_id)
    if course is None:
        raise NotFound("找不到这门课程", code="course_not_found")
    return {**_summary(course), "active": course.active, "audience_levels": course.audience_levels,
            "audience_regions": course.audience_regions, "audience_roles": course.audience_roles,
            "lessons": [_lesson_out(lesson) for lesson in current_lessons(course.id)], "quiz": course.quiz,
            "created_at": course.created_at, "updated_at": course.updated_at}


def course_progress(principal: Principal, course_id: int) -> dict[str, Any]:
    """Per partner (its staff in the audience, how many hold a valid completion) and per learner (lessons done,
    attempts at the current version, the version completed, its expiry). Partners the caller may see only."""
    from app.channel.queries import visible_partners_condition

    course = hq_course(principal, course_id)
    row = db.session.get(Course, course_id)
    visible = set(db.session.scalars(sa.select(Partner.id).where(visible_partners_condition(principal, "hq.read"))))
    partner_names = dict(db.session.execute(sa.select(Partner.id, Partner.name).where(Partner.id.in_(visible))).all())
    all_seats = [s for s in seats() if seat_in(row, s)]
    today, now = today_business(), now_utc()
    users: dict[int, set[int | None]] = {}
    for s in all_seats:
        if s.partner_id is None or s.partner_id in visible:
            users.setdefault(s.user_id, set()).add(s.partner_id)
    names = dict(db.session.execute(sa.select(User.id, User.display_name).where(User.id.in_(users))).all()) \
        if users else {}
    learners, partners = [], {}
    for user_id in sorted(users):
        state = _state(user_id, row, today, now)
        for pid in users[user_id]:
            if pid is None:
                continue
            entry = partners.setdefault(pid, {"partner_id": pid, "partner_name": partner_names.get(pid, ""),
                                              "completed": 0, "staff": 0})
            entry["staff"] += 1
            entry["completed"] += int(state["completed"])
        learners.append({"user_id": user_id, "display_name": names.get(user_id, ""),
                         "partner_ids": sorted(p for p in users[user_id] if p is not None), **state})
    for entry in partners.values():
        entry["rate"] = round(entry["completed"] / entry["staff"], 4) if entry["staff"] else None
    return {"course": course, "partners": sorted(partners.values(), key=lambda e: e["partner_id"]),
            "learners": learners}


def training_rates(partner_ids, as_of: date) -> dict[int, tuple[int, int]]:
    """For each partner with required training due by `as_of`: (staff who completed every such course of theirs
    with a valid, unexpired completion, staff in the audience). The rule is in the module's docstring."""
    partner_ids = {int(p) for p in partner_ids}
    if not partner_ids:
        return {}
    courses = list(db.session.scalars(sa.select(Course).where(
        Course.active.is_(True), Course.required.is_(True), Course.due_date.is_not(None),
        Course.due_date <= as_of)))
    if not courses:
        return {}
    end = business_day_start(as_of + timedelta(days=1))
    staff = seats(partner_ids=partner_ids, partner_only=True)
    user_ids = {s.user_id for s in staff}
    valid: set[tuple[int, int]] = set()
    if user_ids:
        for user_id, course_id, expires_at in db.session.execute(sa.select(
                CourseCompletion.user_id, CourseCompletion.course_id, CourseCompletion.expires_at).where(
                CourseCompletion.user_id.in_(user_ids), CourseCompletion.course_id.in_([c.id for c in courses]),
                CourseCompletion.completed_at < end)):
            if expires_at is None or as_utc(expires_at) >= end:
                valid.add((user_id, course_id))
    # Per partner and user: the courses whose audience one of the user's seats at that partner is in.
    needs: dict[int, dict[int, set[int]]] = {}
    for s in staff:
        for course in courses:
            if seat_in(course, s):
                needs.setdefault(s.partner_id, {}).setdefault(s.user_id, set()).add(course.id)
    out = {}
    for pid, by_user in needs.items():
        met = sum(1 for uid, cids in by_user.items() if all((uid, cid) in valid for cid in cids))
        out[pid] = (met, len(by_user))
    return out
