"""The answer shapes of training, given by the mini-program and by HQ."""

from __future__ import annotations

from marshmallow import Schema, fields

from app.core.schemas import AwareDateTime

LESSON_KINDS = ["live", "video", "document"]
STATUSES = ["not_started", "in_progress", "overdue", "completed"]


class LessonOut(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"enum": LESSON_KINDS})
    title = fields.String()
    url = fields.String()
    starts_at = AwareDateTime(allow_none=True, metadata={"description": "live sessions"})
    duration_seconds = fields.Integer(allow_none=True, metadata={"description": "videos"})
    percent = fields.Integer(metadata={"description": "the caller's furthest point (videos), 100 once done"})
    done = fields.Boolean()
    done_at = AwareDateTime(allow_none=True)


class CourseSummary(Schema):
    id = fields.Integer()
    title = fields.String()
    description = fields.String()
    required = fields.Boolean()
    due_date = fields.Date(allow_none=True)
    valid_days = fields.Integer(allow_none=True, metadata={"description": "a completion expires after these days"})
    version = fields.Integer(metadata={"description": "raised by every change of the lessons or the quiz"})
    pass_mark = fields.Integer(metadata={"description": "percent of the questions right to pass"})
    max_attempts = fields.Integer(metadata={"description": "quiz attempts per user and version"})
    questions = fields.Integer()


class CourseState(Schema):
    lessons_done = fields.Integer()
    lessons_total = fields.Integer()
    quiz = fields.Boolean(metadata={"description": "whether the course has a quiz"})
    quiz_open = fields.Boolean(metadata={"description": "every lesson done and the quiz not passed yet"})
    quiz_passed = fields.Boolean(metadata={"description": "at the current version"})
    attempts_used = fields.Integer(metadata={"description": "at the current version"})
    best_score = fields.Integer(allow_none=True)
    completed = fields.Boolean(metadata={"description": "holds a completion (of any version) not expired"})
    completed_version = fields.Integer(allow_none=True, metadata={"description": "the version last completed"})
    completed_at = AwareDateTime(allow_none=True)
    expires_at = AwareDateTime(allow_none=True)
    status = fields.String(metadata={"enum": STATUSES})
