"""Training courses set up by HQ (CHANNEL.md §7): create and change a course (lessons, quiz, audience), and read
its progress per partner and per learner."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.core.schemas import AwareDateTime, Body, Bool, Day, Int
from app.core.security import current_principal
from app.schemas.training import CourseState, CourseSummary, LessonOut
from app.training import queries, services

blp = Blueprint("hq_training", __name__, description="Training courses, their audience, lessons, quiz and progress")
SECURITY = [{"bearer": []}]

LEVELS = list(services.PARTNER_LEVELS)
ROLES = ["distributor_staff", "agent_staff", "store_owner", "store_clerk"]
REGION = validate.Regexp(r"^\d{6}$", error="地区代码是 6 位数字")


class CourseLessonIn(Body):
    id = Int(load_default=None, validate=validate.Range(min=1, error="不是有效的编号"),
             metadata={"description": "PATCH: keep this lesson (its learners' progress stays); omit for a new one"})
    kind = fields.String(required=True, validate=validate.OneOf(
        ["live", "video", "document"], error="课时类型只能是 live（直播）、video（录播视频）或 document（文档）"))
    title = fields.String(required=True, validate=validate.Length(min=1, max=100))
    url = fields.String(required=True, validate=validate.Length(min=1, max=500))
    starts_at = AwareDateTime(load_default=None, metadata={"description": "live sessions: required"})
    duration_seconds = Int(load_default=None, validate=validate.Range(min=1, max=86400 * 7),
                           metadata={"description": "videos: required"})


class QuizOptionIn(Body):
    text = fields.String(required=True, validate=validate.Length(min=1, max=200))
    correct = Bool(load_default=False)


class QuizQuestionIn(Body):
    text = fields.String(required=True, validate=validate.Length(min=1, max=500))
    kind = fields.String(required=True, validate=validate.OneOf(["single", "multiple"],
                                                                error="题型只能是 single（单选）或 multiple（多选）"))
    options = fields.List(fields.Nested(QuizOptionIn), required=True, validate=validate.Length(min=2, max=10))


class _CourseFields(Body):
    description = fields.String(validate=validate.Length(max=2000))
    required = Bool()
    due_date = Day(allow_none=True, metadata={"description": "required courses: required"})
    valid_days = Int(allow_none=True, validate=validate.Range(min=1, max=3650),
                     metadata={"description": "a completion expires this many days after; null: never"})
    audience_levels = fields.List(fields.String(validate=validate.OneOf(LEVELS)), validate=validate.Length(max=10))
    audience_regions = fields.List(fields.String(validate=REGION), validate=validate.Length(max=200),
                                   metadata={"description": "adcodes; a region includes its cities and districts"})
    audience_roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), validate=validate.Length(max=4))
    lessons = fields.List(fields.Nested(CourseLessonIn), validate=validate.Length(max=100))
    quiz = fields.List(fields.Nested(QuizQuestionIn), validate=validate.Length(max=100))
    pass_mark = Int(validate=validate.Range(min=0, max=100))
    max_attempts = Int(validate=validate.Range(min=1, max=100))
    active = Bool()


class CourseCreateBody(_CourseFields):
    title = fields.String(required=True, validate=validate.Length(min=1, max=100))


class CoursePatchBody(_CourseFields):
    title = fields.String(validate=validate.Length(min=1, max=100))
    expected_version = Int(load_default=None, validate=validate.Range(min=1),
                           metadata={"description": "refuse (409 course_changed) unless the course is at this version"})


class QuizOptionKeyOut(Schema):
    id = fields.Integer()
    text = fields.String()


class QuizQuestionKeyOut(Schema):
    id = fields.Integer()
    text = fields.String()
    kind = fields.String()
    options = fields.List(fields.Nested(QuizOptionKeyOut))
    answer = fields.List(fields.Integer(), metadata={"description": "the correct option ids (HQ only)"})


class HqCourseOut(CourseSummary):
    active = fields.Boolean()
    audience_levels = fields.List(fields.String())
    audience_regions = fields.List(fields.String())
    audience_roles = fields.List(fields.String())
    lessons = fields.List(fields.Nested(LessonOut))
    quiz = fields.List(fields.Nested(QuizQuestionKeyOut))
    created_at = AwareDateTime()
    updated_at = AwareDateTime()


class PartnerTrainingRate(Schema):
    partner_id = fields.Integer()
    partner_name = fields.String()
    completed = fields.Integer()
    staff = fields.Integer(metadata={"description": "the partner's staff in the course's audience"})
    rate = fields.Float(allow_none=True)


class LearnerCourseProgress(CourseState):
    user_id = fields.Integer()
    display_name = fields.String()
    partner_ids = fields.List(fields.Integer())


class CourseProgressOut(Schema):
    course = fields.Nested(HqCourseOut)
    partners = fields.List(fields.Nested(PartnerTrainingRate))
    learners = fields.List(fields.Nested(LearnerCourseProgress))


@blp.route("/courses", methods=["POST"])
@blp.arguments(CourseCreateBody)
@blp.response(201, HqCourseOut)
@blp.doc(security=SECURITY)
def create_course(body):
    """A new course at version 1. 422 `due_date_required`, `invalid_region`, `invalid_answer_key`,
    `live_start_required`, `video_duration_required`, `invalid_lesson_url`, `course_empty`..."""
    principal = current_principal()
    course = services.create_course(principal, **body)
    return queries.hq_course(principal, course.id)


@blp.route("/courses/<int:course_id>", methods=["PATCH"])
@blp.arguments(CoursePatchBody)
@blp.response(200, HqCourseOut)
@blp.doc(security=SECURITY)
def update_course(body, course_id):
    """Change a course; new lessons (the whole list, `id` keeps a lesson) or a new quiz raise its version, and
    completions keep the version they were earned on. 404 `course_not_found`; 409 `course_changed`."""
    principal = current_principal()
    services.update_course(principal, course_id, **body)
    return queries.hq_course(principal, course_id)


@blp.route("/courses/<int:course_id>/progress", methods=["GET"])
@blp.response(200, CourseProgressOut)
@blp.doc(security=SECURITY)
def course_progress(course_id):
    """Per partner: its staff in the audience and how many hold a valid completion; per learner: lessons done,
    attempts at the current version, the version completed and when it expires."""
    return queries.course_progress(current_principal(), course_id)
