"""Training: the caller's courses (what is due first), a course's lessons and quiz (never its answer key), lesson
progress reported by the client, and quiz attempts scored on the server."""

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.core.schemas import AwareDateTime, Body, Id, Int
from app.core.security import current_principal
from app.schemas.training import CourseState, CourseSummary, LessonOut
from app.training import queries, services

blp = Blueprint("mp_training", __name__, description="Training courses (培训)")
SECURITY = [{"bearer": []}]


class LearnerCourseItem(CourseSummary, CourseState):
    pass


class LearnerCourseList(Schema):
    items = fields.List(fields.Nested(LearnerCourseItem), metadata={
        "description": "overdue first, then by nearest due date, then optional courses; completed ones last"})


class TrainingOptionOut(Schema):
    id = fields.Integer()
    text = fields.String()


class TrainingQuestionOut(Schema):
    id = fields.Integer()
    text = fields.String()
    kind = fields.String(metadata={"enum": ["single", "multiple"]})
    options = fields.List(fields.Nested(TrainingOptionOut))


class LearnerCourseDetail(CourseSummary, CourseState):
    lessons = fields.List(fields.Nested(LessonOut))
    quiz_questions = fields.List(fields.Nested(TrainingQuestionOut), attribute="questions_list",
                                 metadata={"description": "the questions and options, without the answers"})


class LessonEventBody(Body):
    lesson_id = Id(required=True)
    event = fields.String(required=True, validate=validate.OneOf(
        ["progress", "attended", "opened"],
        error="事件只能是 progress（视频进度）、attended（参加直播）或 opened（打开文档）"))
    percent = Int(load_default=None, validate=validate.Range(min=0, max=100, error="观看进度是 0 到 100 之间的百分数"),
                  metadata={"description": "videos: how far watched, in percent"})
    position_seconds = Int(load_default=None, validate=validate.Range(min=0, max=10**7, error="观看秒数不对"),
                           metadata={"description": "videos: how far watched, in seconds (when no percent)"})


class LessonEventOut(Schema):
    lesson_id = fields.Integer()
    percent = fields.Integer()
    done = fields.Boolean()
    done_at = AwareDateTime(allow_none=True)
    course = fields.Nested(CourseState)


class QuizAnswerIn(Body):
    question_id = Int(required=True, validate=validate.Range(min=1, max=1000, error="题号不对"))
    option_ids = fields.List(Int(validate=validate.Range(min=1, max=100, error="选项不对")), required=True,
                             validate=validate.Length(max=20, error="选项太多了"))


class QuizAttemptBody(Body):
    answers = fields.List(fields.Nested(QuizAnswerIn), required=True,
                          validate=validate.Length(max=1000, error="答案太多了"))


class QuizAttemptOut(Schema):
    id = fields.Integer()
    version = fields.Integer()
    attempt_no = fields.Integer()
    correct = fields.Integer()
    total = fields.Integer()
    score = fields.Integer(metadata={"description": "percent right, scored on the server"})
    passed = fields.Boolean()
    attempts_left = fields.Integer()
    created_at = AwareDateTime()
    course = fields.Nested(CourseState)


@blp.route("/courses", methods=["GET"])
@blp.response(200, LearnerCourseList)
@blp.doc(security=SECURITY)
def list_courses():
    """The active courses the caller is in the audience of (by partner level, region and role), what is due
    first: overdue, then the nearest due date, then optional courses; completed ones last."""
    return {"items": queries.learner_courses(current_principal())}


@blp.route("/courses/<int:course_id>", methods=["GET"])
@blp.response(200, LearnerCourseDetail)
@blp.doc(security=SECURITY)
def get_course(course_id):
    """A course's lessons with the caller's progress and its quiz questions (never the answers). 403
    `course_not_for_you` outside its audience; 404 `course_not_found`."""
    return queries.learner_course_detail(current_principal(), course_id)


@blp.route("/courses/<int:course_id>/progress", methods=["POST"])
@blp.arguments(LessonEventBody)
@blp.response(200, LessonEventOut)
@blp.doc(security=SECURITY)
def report_progress(body, course_id):
    """A lesson event: a video's `progress` (done at 90%), a live session `attended` (from 15 minutes before its
    start), a document `opened`. A repeat changes nothing. 422 `lesson_not_in_course`, `event_not_for_lesson`,
    `progress_required`; 409 `live_not_started`."""
    principal = current_principal()
    out = services.record_progress(principal, course_id, **body)
    return {**out, "course": queries.learner_course_detail(principal, course_id)}


@blp.route("/courses/<int:course_id>/quiz-attempts", methods=["POST"])
@blp.arguments(QuizAttemptBody)
@blp.response(201, QuizAttemptOut)
@blp.doc(security=SECURITY)
def attempt_quiz(body, course_id):
    """Answer the quiz (after every lesson is done): scored on the server at the course's current version. 409
    `lessons_not_done`, `attempts_exhausted`, `quiz_already_passed`, `no_quiz`; 422 `unknown_question`,
    `unknown_option`, `single_choice`, `duplicate_answer`."""
    principal = current_principal()
    attempt = services.attempt_quiz(principal, course_id, answers=body["answers"])
    course = queries.learner_course_detail(principal, course_id)
    return {"id": attempt.id, "version": attempt.version, "attempt_no": attempt.attempt_no,
            "correct": attempt.correct, "total": attempt.total, "score": attempt.score, "passed": attempt.passed,
            "attempts_left": max(course["max_attempts"] - attempt.attempt_no, 0), "created_at": attempt.created_at,
            "course": course}
