"""Demo training: one required course for D1's staff (distributor staff in Hangzhou, 330100) with a video, a
document and a two-question quiz; 张经理 (`demo_distributor`) has watched the video and not yet opened the document.
Seeding again changes nothing (the course is found by its title)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.accounts.roles import DISTRIBUTOR_STAFF, HQ_ADMIN
from app.core.clock import today_business
from app.core.security import Binding, Principal
from app.extensions import db
from app.training import services
from app.training.models import Course
from app.training.queries import current_lessons

_SYSTEM = Principal(user_id=None, kind="hq", bindings=(Binding(HQ_ADMIN),))  # type: ignore[arg-type]

TITLE = "山泉牛奶新品上市培训"


def seed(ctx) -> None:
    if db.session.scalar(sa.select(Course.id).where(Course.title == TITLE)):
        return
    course = services.create_course(
        _SYSTEM, title=TITLE, description="新品卖点、陈列要求和常见问答，学完后完成小测验。", required=True,
        due_date=today_business() + timedelta(days=14), valid_days=365, audience_roles=[DISTRIBUTOR_STAFF],
        audience_regions=["330100"], pass_mark=60, max_attempts=3,
        lessons=[
            {"kind": "video", "title": "新品卖点讲解", "url": "https://example.com/training/milk-launch.mp4",
             "duration_seconds": 600},
            {"kind": "document", "title": "门店陈列指引", "url": "https://example.com/training/display-guide.pdf"},
        ],
        quiz=[
            {"text": "山泉纯牛奶一提有几盒？", "kind": "single",
             "options": [{"text": "6 盒"}, {"text": "12 盒", "correct": True}, {"text": "24 盒"}]},
            {"text": "陈列时应该做到哪些？", "kind": "multiple",
             "options": [{"text": "先进先出", "correct": True}, {"text": "价签清楚", "correct": True},
                         {"text": "临期品放最前排"}]},
        ])
    user = ctx.users.get("demo_distributor")
    d1 = ctx.partners.get("D1")
    if user is None or d1 is None:
        return
    staff = Principal(user_id=user.id, kind="mp",
                      bindings=(Binding(DISTRIBUTOR_STAFF, partner_id=d1.id, partner_path=d1.path),))
    video = current_lessons(course.id)[0]
    services.record_progress(staff, course.id, lesson_id=video.id, event="progress", percent=100)
