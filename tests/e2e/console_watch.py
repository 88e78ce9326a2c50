"""Helpers for the console's browser tests: watch a page for console errors and failed requests; log in."""

from __future__ import annotations

from tests.helpers import aborted_by_navigation


class Watch:
    """Console errors, failed requests and error answers of a page; `expect` names answers provoked on purpose."""

    def __init__(self, page):
        self.problems: list[str] = []
        self.expected: list[tuple[str, int]] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed",
                lambda r: aborted_by_navigation(r) or self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on("response", self._response)

    def _console(self, message):
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        # Chromium reports every error answer as a console error too: the provoked ones are expected there.
        if message.text.startswith("Failed to load resource") and any(
                part in url and f"status of {status}" in message.text for part, status in self.expected):
            return
        self.problems.append(f"console error: {message.text} ({url})")

    def _response(self, resp):
        if resp.status >= 400:
            if any(part in resp.url and resp.status == status for part, status in self.expected):
                return
            self.problems.append(f"{resp.status} {resp.url}")

    def expect(self, url_part: str, status: int) -> None:
        self.expected.append((url_part, status))


def login(page, base, username):
    page.goto(f"{base}/hq/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "admin")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/hq/")
