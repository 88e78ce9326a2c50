"""The console's training pages: the course list, creating and editing a course (lessons and quiz in one form,
a content change makes a new version), a refusal shown in Chinese with the values kept, and the progress page."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.demo.training import TITLE
from app.extensions import db
from app.training.models import Course
from tests.conftest import mp_login


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture()
def console(client, demo):
    html = client.get("/hq/login").get_data(as_text=True)
    resp = client.post("/hq/login", data={"username": "admin", "password": "admin", "csrf": _csrf(html)})
    assert resp.status_code == 302
    return client


def _form(csrf: str, **over) -> dict:
    form = {"csrf": csrf, "title": "控制台课程", "description": "说明", "required": "1", "due_date": "2099-06-30",
            "valid_days": "180", "pass_mark": "50", "max_attempts": "2", "active": "1", "roles": "distributor_staff",
            "regions": "330100", "lesson_rows": "2", "question_rows": "1",
            "lesson_kind_0": "video", "lesson_title_0": "视频", "lesson_url_0": "https://example.com/v.mp4",
            "lesson_duration_0": "300", "lesson_kind_1": "document", "lesson_title_1": "", "lesson_url_1": "",
            "question_text_0": "选对的", "question_kind_0": "single", "question_options_0": "*对\n错"}
    return form | over


def test_list_create_edit_and_progress(console, app):
    html = console.get("/hq/courses").get_data(as_text=True)
    assert "培训课程" in html and TITLE in html
    new = console.get("/hq/courses/new").get_data(as_text=True)
    resp = console.post("/hq/courses", data=_form(_csrf(new)), follow_redirects=True)
    assert resp.status_code == 200 and "课程已创建：控制台课程" in resp.get_data(as_text=True)
    with app.app_context():
        course = db.session.scalar(sa.select(Course).where(Course.title == "控制台课程"))
        assert course.required and course.quiz[0]["answer"] == [1] and course.audience_regions == ["330100"]
        course_id = course.id
    edit = console.get(f"/hq/courses/{course_id}/edit").get_data(as_text=True)
    assert "*对" in edit and 'value="视频"' in edit
    lesson_id = re.search(r'name="lesson_id_0" value="(\d+)"', edit).group(1)
    # The same content again: still version 1; a new option: version 2.
    same = _form(_csrf(edit), version="1", lesson_id_0=lesson_id)
    assert "第 1 版" in console.post(f"/hq/courses/{course_id}", data=same, follow_redirects=True).get_data(
        as_text=True)
    changed = same | {"question_options_0": "*对\n错\n不知道"}
    assert "第 2 版" in console.post(f"/hq/courses/{course_id}", data=changed, follow_redirects=True).get_data(
        as_text=True)
    # A stale form (version 1) is refused.
    resp = console.post(f"/hq/courses/{course_id}", data=changed | {"question_options_0": "*对"})
    assert resp.status_code == 409 and "课程已被别人改过" in resp.get_data(as_text=True)
    page = console.get(f"/hq/courses/{course_id}/progress").get_data(as_text=True)
    assert "学习进度：控制台课程" in page and "杭州西湖分销" in page and "张经理" in page


def test_a_bad_form_is_refused_in_chinese_with_the_values_kept(console, app):
    new = console.get("/hq/courses/new").get_data(as_text=True)
    resp = console.post("/hq/courses", data=_form(_csrf(new), due_date="", title="没有截止日期"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "必修课要填截止日期" in html and 'value="没有截止日期"' in html
    resp = console.post("/hq/courses", data=_form(_csrf(new), question_options_0="对\n错"))
    assert resp.status_code == 422 and "正确选项" in resp.get_data(as_text=True)
    resp = console.post("/hq/courses", data=_form(_csrf(new), pass_mark="abc"))
    assert resp.status_code == 422 and "及格线要填整数" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Course.id))) == 1  # the demo's only


def test_the_progress_page_shows_the_demo_learner(console, client):
    mp_login(client, "demo_distributor")
    html = console.get("/hq/courses").get_data(as_text=True)
    course_id = re.search(r'/hq/courses/(\d+)/progress', html).group(1)
    page = console.get(f"/hq/courses/{course_id}/progress").get_data(as_text=True)
    assert "张经理" in page and "1/2" in page and "学习中" in page
    assert console.get("/hq/courses/987654/progress").status_code == 404
