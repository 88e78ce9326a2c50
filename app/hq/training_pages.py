"""The console's training pages: the course list, a course's form (settings, audience, lessons and quiz), and its
progress per partner and per learner.

Routes on the console's blueprint (`app.hq.pages.bp`), over the same domain functions as the HQ API
(`app.training.services`, `queries`). A form with bad input comes back with the message and the values kept,
with the service's status, and nothing changed.

In the quiz box each line is an option; a line starting with `*` is a correct one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for

from app.accounts.roles import ROLE_NAMES
from app.core.clock import BUSINESS_TZ
from app.core.regions import region_name
from app.errors import AppError, ValidationFailed
from app.hq.pages import bp, login_required
from app.training import queries, services
from app.training.audience import LEARNER_ROLES
from app.training.models import LESSON_KIND_NAMES

PAGE_SIZE = 20
LEARNERS_PAGE_SIZE = 50
BLANK_LESSONS, BLANK_QUESTIONS = 3, 2
LEVEL_NAMES = {"standard": "标准", "silver": "银牌", "gold": "金牌", "platinum": "白金"}
STATUS_NAMES = {"not_started": "未开始", "in_progress": "学习中", "overdue": "已逾期", "completed": "已完成"}


def _page() -> int:
    raw = request.args.get("page", "1")
    return max(1, min(int(raw), 10_000)) if raw.isdigit() else 1


def _paged(items: list, size: int) -> dict[str, Any]:
    page = _page()
    pages = max(1, -(-len(items) // size))
    page = min(page, pages)
    return {"rows": items[(page - 1) * size: page * size], "page": page, "pages": pages, "total": len(items)}


def _helpers() -> dict[str, Any]:
    return {"kind_names": LESSON_KIND_NAMES, "level_names": LEVEL_NAMES, "status_names": STATUS_NAMES,
            "role_names": {r: ROLE_NAMES[r] for r in LEARNER_ROLES}, "region_label": region_name,
            "can_write": g.principal.can("hq.write")}


@bp.get("/courses")
@login_required
def courses():
    """Every course: required or not, due date, version, lessons, questions, active."""
    result = _paged(queries.hq_courses(g.principal), PAGE_SIZE)
    return render_template("hq/courses.html", result=result, **_helpers())


# --- the form ---------------------------------------------------------------------------------------------------

def _local_input(value) -> str:
    return value.astimezone(BUSINESS_TZ).strftime("%Y-%m-%dT%H:%M") if value else ""


def _form_from_course(course: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": course["title"], "description": course["description"], "required": course["required"],
        "due_date": course["due_date"].isoformat() if course["due_date"] else "",
        "valid_days": course["valid_days"] or "", "pass_mark": course["pass_mark"],
        "max_attempts": course["max_attempts"], "active": course["active"],
        "levels": course["audience_levels"], "roles": course["audience_roles"],
        "regions": "，".join(course["audience_regions"]), "version": course["version"],
        "lessons": [{"id": lesson["id"], "kind": lesson["kind"], "title": lesson["title"], "url": lesson["url"],
                     "starts_at": _local_input(lesson["starts_at"]), "duration": lesson["duration_seconds"] or ""}
                    for lesson in course["lessons"]],
        "questions": [{"text": q["text"], "kind": q["kind"], "options": "\n".join(
            ("*" if o["id"] in q["answer"] else "") + o["text"] for o in q["options"])} for q in course["quiz"]],
    }


def _blank_form() -> dict[str, Any]:
    return {"title": "", "description": "", "required": False, "due_date": "", "valid_days": "", "pass_mark": 60,
            "max_attempts": 3, "active": True, "levels": [], "roles": [], "regions": "", "lessons": [],
            "questions": []}


def _int(raw: str, label: str, *, optional: bool = False) -> int | None:
    raw = (raw or "").strip()
    if not raw and optional:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise ValidationFailed(f"{label}要填整数", code="invalid_number")
    return int(raw)


def _read_form() -> tuple[dict[str, Any], dict[str, Any]]:
    """The form as typed (to show again) and the arguments of the use case (or ValidationFailed)."""
    f = request.form
    shown: dict[str, Any] = {
        "title": f.get("title", "").strip(), "description": f.get("description", "").strip(),
        "required": f.get("required") == "1", "due_date": f.get("due_date", "").strip(),
        "valid_days": f.get("valid_days", "").strip(), "pass_mark": f.get("pass_mark", "").strip(),
        "max_attempts": f.get("max_attempts", "").strip(), "active": f.get("active") == "1",
        "levels": f.getlist("levels"), "roles": f.getlist("roles"), "regions": f.get("regions", "").strip(),
        "version": f.get("version", ""), "lessons": [], "questions": []}
    for i in range(min(int(f.get("lesson_rows", "0") or 0) if f.get("lesson_rows", "").isdigit() else 0, 100)):
        shown["lessons"].append({k: f.get(f"lesson_{k}_{i}", "").strip()
                                 for k in ("id", "kind", "title", "url", "starts_at", "duration")})
    for i in range(min(int(f.get("question_rows", "0") or 0) if f.get("question_rows", "").isdigit() else 0, 100)):
        shown["questions"].append({k: f.get(f"question_{k}_{i}", "").strip() for k in ("text", "kind", "options")})
    return shown, _arguments(shown)


def _arguments(shown: dict[str, Any]) -> dict[str, Any]:
    due = None
    if shown["due_date"]:
        try:
            due = datetime.strptime(shown["due_date"], "%Y-%m-%d").date()
        except ValueError:
            raise ValidationFailed("截止日期要写成 2026-12-31", code="invalid_due_date") from None
    lessons = []
    for row in shown["lessons"]:
        if not row["title"] and not row["url"]:
            continue  # a blank row (or one cleared to remove the lesson)
        starts = None
        if row["starts_at"]:
            try:
                starts = datetime.strptime(row["starts_at"], "%Y-%m-%dT%H:%M").replace(tzinfo=BUSINESS_TZ)
            except ValueError:
                raise ValidationFailed("直播开始时间格式不对", code="invalid_starts_at") from None
        lessons.append({"id": _int(row["id"], "课时编号", optional=True), "kind": row["kind"], "title": row["title"],
                        "url": row["url"], "starts_at": starts,
                        "duration_seconds": _int(row["duration"], "视频时长", optional=True)})
    quiz = []
    for row in shown["questions"]:
        if not row["text"] and not row["options"]:
            continue
        options = [line.strip() for line in row["options"].splitlines() if line.strip()]
        quiz.append({"text": row["text"], "kind": row["kind"],
                     "options": [{"text": o.lstrip("*").strip(), "correct": o.startswith("*")} for o in options]})
    regions = [c for c in shown["regions"].replace("，", ",").replace(" ", ",").split(",") if c]
    return {"title": shown["title"], "description": shown["description"], "required": shown["required"],
            "due_date": due, "valid_days": _int(shown["valid_days"], "有效天数", optional=True),
            "pass_mark": _int(shown["pass_mark"], "及格线"), "max_attempts": _int(shown["max_attempts"], "答题次数"),
            "audience_levels": shown["levels"], "audience_roles": shown["roles"], "audience_regions": regions,
            "lessons": lessons, "quiz": quiz}


def _form_page(form: dict[str, Any], *, course_id: int | None = None, error: str | None = None, status: int = 200):
    lessons = form["lessons"] + [{"id": "", "kind": "video", "title": "", "url": "", "starts_at": "",
                                  "duration": ""} for _ in range(BLANK_LESSONS)]
    questions = form["questions"] + [{"text": "", "kind": "single", "options": ""} for _ in range(BLANK_QUESTIONS)]
    return render_template("hq/course_form.html", form=form, lessons=lessons, questions=questions,
                           course_id=course_id, error=error, **_helpers()), status


@bp.get("/courses/new")
@login_required
def new_course():
    return _form_page(_blank_form())


@bp.post("/courses")
@login_required
def create_course():
    shown = None
    try:
        shown, args = _read_form()
        course = services.create_course(g.principal, active=shown["active"], **args)
    except AppError as err:
        return _form_page(shown or _blank_form(), error=err.message, status=err.status)
    flash(f"课程已创建：{course.title}（第 1 版）", "ok")
    return redirect(url_for("hq_pages.courses"))


@bp.get("/courses/<int:course_id>/edit")
@login_required
def edit_course(course_id: int):
    return _form_page(_form_from_course(queries.hq_course(g.principal, course_id)), course_id=course_id)


@bp.post("/courses/<int:course_id>")
@login_required
def update_course(course_id: int):
    shown = None
    try:
        shown, args = _read_form()
        version = _int(shown["version"], "版本", optional=True)
        course = services.update_course(g.principal, course_id, expected_version=version, active=shown["active"],
                                        **args)
    except AppError as err:
        form = shown or _form_from_course(queries.hq_course(g.principal, course_id))
        return _form_page(form, course_id=course_id, error=err.message, status=err.status)
    flash(f"已保存：{course.title}（第 {course.version} 版）", "ok")
    return redirect(url_for("hq_pages.courses"))


# --- progress -------------------------------------------------------------------------------------------------

@bp.get("/courses/<int:course_id>/progress")
@login_required
def course_progress(course_id: int):
    """Per partner: staff in the audience, completed, rate; per learner: lessons, attempts, version, expiry."""
    report = queries.course_progress(g.principal, course_id)
    partner_names = {p["partner_id"]: p["partner_name"] for p in report["partners"]}
    learners = _paged(report["learners"], LEARNERS_PAGE_SIZE)
    return render_template("hq/course_progress.html", course=report["course"], partners=report["partners"],
                           learners=learners, partner_names=partner_names, **_helpers())
