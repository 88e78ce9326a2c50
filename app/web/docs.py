"""The landing page and the offline API docs page; cookie sessions only for the console's pages."""

from __future__ import annotations

from flask import Blueprint, Flask, Request, redirect, render_template
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_smorest import Api

bp = Blueprint("web", __name__)


class ConsoleSessions(SecureCookieSessionInterface):
    """Cookie sessions for the console pages only: the JSON APIs authenticate with bearer tokens, so their
    requests (every scan among them) skip reading, verifying and re-signing a cookie."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith("/api/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


@bp.get("/")
def index():
    return redirect("/hq/")


def register(app: Flask, api: Api) -> None:
    app.session_interface = ConsoleSessions()
    app.register_blueprint(bp)

    @app.get("/api/docs")
    def api_docs():
        """The OpenAPI document as a readable page, with no script from the internet."""
        spec = api.spec.to_dict()
        return render_template("api_docs.html", spec=spec)
