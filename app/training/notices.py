"""Subscribe messages about training, sent by scheduled jobs (`app/cron.py`), each at most once per user.

`remind_live_sessions`: a live lesson starting within `TRAINING_LIVE_NOTICE_MINUTES` (30) reaches each learner of
the course who has not attended it. `remind_due_courses`: a required course due within `TRAINING_DUE_NOTICE_DAYS`
(3) reaches each learner who has not completed it. A row in `training_notices` (unique per kind, user, course and
subject) is written in the job's transaction before anything is sent; the messages go out after the commit.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from app.accounts.models import User
from app.core.clock import local_text, now_utc, today_business
from app.core.db import dialect_insert
from app.core.tx import after_commit, transaction
from app.extensions import db
from app.training.audience import seat_in, seats
from app.training.models import Course, CourseCompletion, Lesson, LessonProgress, TrainingNotice

log = logging.getLogger(__name__)

COURSE_PAGE = "pages/training/course"
LIVE_SOON, DUE_SOON = "live_soon", "due_soon"


def _learners(course: Course, all_seats) -> set[int]:
    return {s.user_id for s in all_seats if seat_in(course, s)}


def _claim(kind: str, course_id: int, subject_id: int, user_ids: set[int]) -> list[int]:
    """Write the notice rows; answer the users whose row is new (so who gets a message now)."""
    fresh = []
    for user_id in sorted(user_ids):
        new_id = db.session.scalar(dialect_insert()(TrainingNotice).values(
            kind=kind, user_id=user_id, course_id=course_id, subject_id=subject_id, created_at=now_utc())
            .on_conflict_do_nothing(index_elements=["kind", "user_id", "course_id", "subject_id"])
            .returning(TrainingNotice.id))
        if new_id is not None:
            fresh.append(user_id)
    return fresh


def remind_live_sessions() -> int:
    """Job: learners of a live lesson about to start, once per lesson; answers how many were claimed."""
    minutes = int(current_app.config.get("TRAINING_LIVE_NOTICE_MINUTES", 30))
    now = now_utc()
    claimed = 0
    with transaction():
        rows = db.session.execute(sa.select(Lesson, Course).join(Course, Course.id == Lesson.course_id).where(
            Course.active.is_(True), Lesson.kind == "live", Lesson.removed_in_version.is_(None),
            Lesson.starts_at > now, Lesson.starts_at <= now + timedelta(minutes=minutes))).all()
        all_seats = seats() if rows else []
        for lesson, course in rows:
            attended = set(db.session.scalars(sa.select(LessonProgress.user_id).where(
                LessonProgress.lesson_id == lesson.id, LessonProgress.done_at.is_not(None))))
            users = _claim(LIVE_SOON, course.id, lesson.id, _learners(course, all_seats) - attended)
            claimed += len(users)
            data = {"thing1": course.title[:20], "thing2": lesson.title[:20], "time3": local_text(lesson.starts_at)}
            if users:
                after_commit(lambda users=users, data=data, cid=course.id: _send("training_live_soon", users, data,
                                                                                  cid))
    return claimed


def remind_due_courses() -> int:
    """Job: learners of a required course due within a few days who have not completed it, once per course."""
    days = int(current_app.config.get("TRAINING_DUE_NOTICE_DAYS", 3))
    today = today_business()
    claimed = 0
    with transaction():
        courses = list(db.session.scalars(sa.select(Course).where(
            Course.active.is_(True), Course.required.is_(True), Course.due_date >= today,
            Course.due_date <= today + timedelta(days=days))))
        all_seats = seats() if courses else []
        now = now_utc()
        for course in courses:
            done = set(db.session.scalars(sa.select(CourseCompletion.user_id).where(
                CourseCompletion.course_id == course.id,
                sa.or_(CourseCompletion.expires_at.is_(None), CourseCompletion.expires_at > now))))
            users = _claim(DUE_SOON, course.id, 0, _learners(course, all_seats) - done)
            claimed += len(users)
            data = {"thing1": course.title[:20], "date2": course.due_date.isoformat(),
                    "thing3": "必修课快到截止日期了，请尽快学完"}
            if users:
                after_commit(lambda users=users, data=data, cid=course.id: _send("training_due_soon", users, data,
                                                                                  cid))
    return claimed


def _send(kind: str, user_ids: list[int], data: dict, course_id: int) -> None:
    from app.integrations.jobs import enqueue

    try:
        enqueue("app.training.notices.send_notice", kind, user_ids, data, course_id, retries=3)
    except Exception:  # a courtesy: a queue outage must not undo the job's run
        log.exception("training: could not queue the %s notice of course %s", kind, course_id)


def send_notice(kind: str, user_ids: list[int], data: dict, course_id: int) -> int:
    """Job: the subscribe message to each of these users with an openid; answers how many went out."""
    from app.integrations.wechat import WeChatNotSubscribed, get_wechat

    template = current_app.config["WECHAT_TEMPLATES"].get(kind)
    openids = list(db.session.scalars(sa.select(User.openid).where(
        User.id.in_(user_ids), User.openid.is_not(None), User.is_active.is_(True))))
    db.session.rollback()  # no transaction stays open while WeChat answers
    if not template:
        return 0
    sent = 0
    for openid in openids:
        try:
            get_wechat().send_subscribe_message(openid, template, data, page=f"{COURSE_PAGE}?id={course_id}")
            sent += 1
        except WeChatNotSubscribed:
            log.info("training: %s has not subscribed to %s", openid, kind)
    return sent
