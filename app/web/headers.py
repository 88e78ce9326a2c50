"""The headers every response carries to defend itself in a browser; one `after_request` for the whole app.

- Every response: `X-Content-Type-Options: nosniff` (a JSON answer or a CSV export is never run as a script
  or shown as a page), and in production `Strict-Transport-Security` (browsers only ever use HTTPS here).
- HTML (the console under /hq/, the consumer page under /c/, the API docs, error pages): a
  Content-Security-Policy that lets the page load only this app's own scripts, styles and images, with nothing
  inline (the pages have no script; styles are static files; the charts are SVG drawn on the server), and that
  no other site may frame (`frame-ancestors 'none'`, and `X-Frame-Options: DENY` for older browsers), so a
  click-jacking page cannot make an HQ user approve a plan or ship an order; `Referrer-Policy: same-origin`,
  so no console URL (with its filters) leaks to another site.
- `Cache-Control: no-store` on every answer that is about someone (neither a browser, a proxy nor a phone keeps
  it): the JSON APIs under /api/ (stock, orders, phone numbers, tokens; the public verify counts every check),
  the console's pages and exports, and the consumer page; any response to a request that carried a token.
  What is the same for everyone may be cached: static files and the API's own description.
"""

from __future__ import annotations

from flask import Flask, Response, request

CSP = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "media-src 'self'",  # the shipping desk's scan sounds (/hq/static/*.wav)
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HSTS = "max-age=31536000; includeSubDomains"
PRIVATE_PREFIXES = ("/api/", "/hq/", "/c/")
SHARED_PATHS = frozenset(("/api/openapi.json", "/api/docs"))
SHARED_PREFIXES = ("/hq/static/", "/static/")


def _private(path: str) -> bool:
    if path in SHARED_PATHS or path.startswith(SHARED_PREFIXES):
        return False
    return path.startswith(PRIVATE_PREFIXES) or "Authorization" in request.headers


def init_app(app: Flask) -> None:
    production = app.config.get("APP_ENV") == "production"

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers["X-Content-Type-Options"] = "nosniff"
        if production:
            headers["Strict-Transport-Security"] = HSTS
        if response.mimetype == "text/html":
            headers["Content-Security-Policy"] = CSP
            headers["X-Frame-Options"] = "DENY"
            headers["Referrer-Policy"] = "same-origin"
            headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if _private(request.path):
            headers["Cache-Control"] = "no-store"
        return response
