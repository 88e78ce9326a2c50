"""The error answers every operation can give, documented in one place.

flask-smorest documents each route's success and (with `arguments`) its 422; the other errors come from shared
code: the router (404 for an unknown id), `require`/`authorize` (401, 403), the JSON guard and parsers (400, 413),
unique keys and state checks (409), the database being away (503). This apispec plugin adds them to every
operation of the JSON APIs by the same rules, each as the contract's Error shape, so a client (and schemathesis'
response checks) can rely on the document for every status the server answers.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from apispec import BasePlugin

METHODS = ("get", "post", "put", "patch", "delete")
WRITES = ("post", "put", "patch", "delete")
API_PREFIXES = ("/api/mp/", "/api/hq/", "/api/public/")
# Operations anyone may call (everything else under the APIs needs a bearer token).
ANONYMOUS = {("post", "/api/mp/v1/sessions"), ("post", "/api/mp/v1/consumer-sessions"), ("post", "/api/hq/v1/sessions")}
ANONYMOUS_PREFIXES = ("/api/public/",)


def _response(status: int) -> str:
    """The name flask-smorest registers (lazily) for this status, with the Error schema."""
    return HTTPStatus(status).name


class ErrorResponses(BasePlugin):
    def operation_helper(self, path: str | None = None, operations: dict | None = None, **kwargs: Any) -> None:
        if not path or not path.startswith(API_PREFIXES):
            return
        for method, op in (operations or {}).items():
            if method not in METHODS:
                continue
            responses: dict[str, Any] = op.setdefault("responses", {})
            signed_in = (method, path) not in ANONYMOUS and not path.startswith(ANONYMOUS_PREFIXES)
            has_body = "requestBody" in op
            statuses = [400, 503]
            if signed_in:
                op.setdefault("security", [{"bearer": []}])
                statuses += [401, 403, 404]
            elif "{" in path:
                statuses.append(404)
            if method in WRITES:
                statuses += [409, 422]
            if has_body:
                statuses += [413, 422]
            if op.get("parameters"):
                statuses.append(422)
            for status in sorted(set(statuses)):
                responses.setdefault(str(status), _response(status))
