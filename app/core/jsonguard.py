"""Input the app must not be handed: JSON nested deeper than any body of ours, numbers longer than Python converts,
and text no database can store.

Python's `json` recurses once per nesting level (a body of 100 000 `[` is a RecursionError, not a ValueError, so
every JSON parser in the app would answer 500), and refuses integers of more than 4300 digits with a ValueError
that webargs does not expect. Both are refused here, before any view or parser reads the body, with
400 `bad_json`. The check reads the body once (it stays cached for the parsers) and costs two byte counts for
ordinary bodies; a body with more brackets than `MAX_DEPTH`, or longer than `MAX_DIGITS`, is scanned with byte
operations (split, translate), never character by character in Python.

Text with a NUL character (PostgreSQL refuses it in any string) or half of a UTF-16 surrogate pair (it cannot be
encoded as UTF-8 for either database) is refused with 400 `bad_text`, wherever it comes: an escape in a JSON body
(`\\u0000`, a lone `\\ud800`), or `%00` in the URL or a form.
"""

from __future__ import annotations

import re
from itertools import accumulate

from flask import Flask, request

from app.errors import AppError

MAX_DEPTH = 32  # our deepest body (an offline batch: object → list → object) is 3
MAX_DIGITS = 4000  # Python converts up to 4300

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_ALL = bytes(range(256))
_NOT_BRACKET = bytes(b for b in _ALL if b not in b"[]{}")
_NOT_DIGIT = bytes(b for b in _ALL if b not in b"0123456789")
_DIGIT_OR_SPACE = bytes(b if b in b"0123456789" else 32 for b in _ALL)
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_ANY_ESCAPE = re.compile(rb"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


class BadJson(AppError):
    status, code, message = 400, "bad_json", "提交的 JSON 嵌套太深或数字太长"


class BadText(AppError):
    status, code, message = 400, "bad_text", "提交的文字里有无法保存的字符"


def problem(body: bytes) -> str | None:
    """Why this body must not be parsed ('too_deep', 'number_too_long'), or None."""
    openers = body.count(b"[") + body.count(b"{")
    if openers <= MAX_DEPTH and len(body) <= MAX_DIGITS:
        return None
    outside = _outside_strings(body)
    if (len(outside.translate(None, _NOT_DIGIT)) > MAX_DIGITS
            and max(map(len, outside.translate(_DIGIT_OR_SPACE).split())) > MAX_DIGITS):
        return "number_too_long"
    if openers > MAX_DEPTH and _deeper_than(outside.translate(None, _NOT_BRACKET), MAX_DEPTH):
        return "too_deep"
    return None


def _outside_strings(body: bytes) -> bytes:
    """The body without the contents of its JSON strings (escapes dropped first, so every quote left delimits)."""
    if b"\\" in body:
        body = _ESCAPE.sub(b"", body)
    return b'""'.join(body.split(b'"')[0::2])


def _deeper_than(brackets: bytes, limit: int) -> bool:
    """Whether these brackets ever nest deeper than `limit`.

    Each pass of `replace` removes every innermost pair, one level everywhere at once, so a body within the
    limit is empty after `limit` passes (at C speed, however wide). Only what is still left, a body too deep or
    malformed, is walked bracket by bracket, stopping at the first one past the limit."""
    left = brackets
    for _ in range(limit):
        left = left.replace(b"[]", b"").replace(b"{}", b"")
        if not left:
            return False
    return any(map(limit.__lt__, accumulate(map(_STEP.__getitem__, brackets))))


def unstorable_escape(body: bytes) -> bool:
    """Whether a JSON body escapes a NUL or half a surrogate pair (`\\u0000`, `\\ud800` alone, `\\udc00` alone)."""
    if b"\\u" not in body:
        return False
    end, high = -1, False  # where the last escape ended; whether it opened a surrogate pair
    for m in _ANY_ESCAPE.finditer(body):
        esc = m.group(1)
        point = int(esc[1:], 16) if len(esc) == 5 else None
        if high and not (point is not None and 0xDC00 <= point <= 0xDFFF and m.start() == end):
            return True
        if point == 0 or (not high and point is not None and 0xDC00 <= point <= 0xDFFF):
            return True
        high = not high and point is not None and 0xD800 <= point <= 0xDBFF
        end = m.end()
    return high


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def init_app(app: Flask) -> None:
    @app.before_request
    def _refuse_unreadable_input():
        if "\x00" in request.path or b"%00" in request.query_string or b"\x00" in request.query_string:
            raise BadText(details={"reason": "nul_in_url"})
        if not request.content_length and not request.headers.get("Transfer-Encoding"):
            return
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            if any("\x00" in key or "\x00" in value for key, value in request.form.items(multi=True)):
                raise BadText(details={"reason": "nul_in_form"})
            return
        if not _is_json(request.mimetype):
            return
        body = request.get_data(cache=True)
        reason = problem(body)
        if reason == "too_deep":
            raise BadJson("提交的 JSON 嵌套太深", details={"reason": reason, "max_depth": MAX_DEPTH})
        if reason == "number_too_long":
            raise BadJson("提交的数字太长", details={"reason": reason, "max_digits": MAX_DIGITS})
        if unstorable_escape(body):
            raise BadText(details={"reason": "unstorable_character"})
