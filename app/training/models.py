"""Courses, their lessons and quiz, and each user's progress, attempts and completions.

A course's `version` goes up whenever its lessons or its quiz change; a quiz attempt and a completion record the
version they were made on, so a content change never rewrites what someone already earned. Lessons keep their id
across versions while they stay in the course (a removed lesson is marked `removed_in_version`), so progress on a
lesson that did not change still counts.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import now_utc
from app.core.types import BigId, UTCDateTime
from app.extensions import db

LESSON_KINDS = ("live", "video", "document")
LESSON_KIND_NAMES = {"live": "直播", "video": "录播视频", "document": "文档"}
QUESTION_KINDS = ("single", "multiple")


class Course(db.Model):
    """A course and its audience. The quiz (questions with options and the correct ones) is JSON on the course:
    `[{"id", "text", "kind": single|multiple, "options": [{"id", "text"}], "answer": [option ids]}]`; never sent
    to a learner with `answer`."""

    __tablename__ = "courses"
    __table_args__ = (
        sa.CheckConstraint("version >= 1", name="course_version_positive"),
        sa.CheckConstraint("pass_mark BETWEEN 0 AND 100", name="course_pass_mark_percent"),
        sa.CheckConstraint("max_attempts >= 1", name="course_max_attempts_positive"),
        sa.CheckConstraint("valid_days IS NULL OR valid_days >= 1", name="course_valid_days_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(100))
    description: Mapped[str] = mapped_column(sa.String(2000), default="")
    required: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    due_date: Mapped[date | None] = mapped_column(sa.Date)
    valid_days: Mapped[int | None] = mapped_column(sa.Integer)  # a completion expires this many days after
    audience_levels: Mapped[list] = mapped_column(sa.JSON, default=list)  # partner levels; [] = any
    audience_regions: Mapped[list] = mapped_column(sa.JSON, default=list)  # adcodes (with their children); [] = any
    audience_roles: Mapped[list] = mapped_column(sa.JSON, default=list)  # roles; [] = every partner and store role
    quiz: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    pass_mark: Mapped[int] = mapped_column(sa.SmallInteger, default=60)  # percent of questions right
    max_attempts: Mapped[int] = mapped_column(sa.SmallInteger, default=3)  # per user and version
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class Lesson(db.Model):
    __tablename__ = "course_lessons"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('live', 'video', 'document')", name="lesson_kind_known"),
        sa.Index("ix_course_lessons_course_id_position", "course_id", "position"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id"))
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    kind: Mapped[str] = mapped_column(sa.String(16))
    title: Mapped[str] = mapped_column(sa.String(100))
    url: Mapped[str] = mapped_column(sa.String(500))  # the live link, the video or the document
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # live sessions
    duration_seconds: Mapped[int | None] = mapped_column(sa.Integer)  # videos
    added_in_version: Mapped[int] = mapped_column(sa.Integer, default=1)
    removed_in_version: Mapped[int | None] = mapped_column(sa.Integer)  # no longer in the course from this version


class LessonProgress(db.Model):
    """One user's progress on one lesson: the furthest a video was watched, and when the lesson was done."""

    __tablename__ = "lesson_progress"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "lesson_id", name="uq_lesson_progress_user_id_lesson_id"),
        sa.Index("ix_lesson_progress_course_id_user_id", "course_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id"))
    lesson_id: Mapped[int] = mapped_column(sa.ForeignKey("course_lessons.id"))
    percent: Mapped[int] = mapped_column(sa.SmallInteger, default=0)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class QuizAttempt(db.Model):
    """One scored attempt; `attempt_no` counts from 1 per user, course and version, and the unique index keeps two
    attempts at once from both taking the last allowed number."""

    __tablename__ = "quiz_attempts"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "course_id", "version", "attempt_no",
                            name="uq_quiz_attempts_user_course_version_no"),
        sa.CheckConstraint("attempt_no >= 1", name="attempt_no_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id"), index=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    attempt_no: Mapped[int] = mapped_column(sa.SmallInteger)
    answers: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    correct: Mapped[int] = mapped_column(sa.SmallInteger)
    total: Mapped[int] = mapped_column(sa.SmallInteger)
    score: Mapped[int] = mapped_column(sa.SmallInteger)  # percent
    passed: Mapped[bool] = mapped_column(sa.Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class CourseCompletion(db.Model):
    """A user completed a course at a version: all its lessons done, then its quiz passed. Kept as earned."""

    __tablename__ = "course_completions"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "course_id", "version", name="uq_course_completions_user_course_version"),
        sa.Index("ix_course_completions_course_id", "course_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id"))
    version: Mapped[int] = mapped_column(sa.Integer)
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TrainingNotice(db.Model):
    """A subscribe message sent (or being sent) to a user: at most one per kind, user, course and subject (the
    live lesson for `live_soon`, 0 for `due_soon`), so a job that runs again sends nothing twice."""

    __tablename__ = "training_notices"
    __table_args__ = (
        sa.UniqueConstraint("kind", "user_id", "course_id", "subject_id", name="uq_training_notices_once"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id"))
    subject_id: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
