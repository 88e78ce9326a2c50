"""Routes outside the JSON APIs: the offline API docs page, the landing page, and optional web areas."""

from __future__ import annotations

import importlib

from flask import Blueprint, Flask, redirect, render_template
from flask_smorest import Api

bp = Blueprint("web", __name__)

# Web areas built in their own packages; each exposes `register(app, api)`.
OPTIONAL = ("app.hq.pages", "app.public.views", "app.payments.callbacks")


@bp.get("/")
def index():
    return redirect("/hq/")


def register(app: Flask, api: Api) -> None:
    app.register_blueprint(bp)

    @app.get("/api/docs")
    def api_docs():
        """The OpenAPI document as a readable page, with no script from the internet."""
        spec = api.spec.to_dict()
        return render_template("api_docs.html", spec=spec)

    for name in OPTIONAL:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue
            raise
        module.register(app, api)
