"""The mini-program's HTTP edge (`/api/mp/v1`): one folder per area, each with views.py and schemas.py."""

from flask_smorest import Api


def register(api: Api) -> None:
    """Register every mini-program blueprint."""
    from miniprogram_api.catalog.views import blp as catalog
    from miniprogram_api.invites.views import blp as invites
    from miniprogram_api.sessions.views import blp as sessions
    from miniprogram_api.stock.views import blp as stock

    for blp in (sessions, invites, catalog, stock):
        api.register_blueprint(blp, url_prefix="/api/mp/v1")
    for name in ("scans", "orders", "incentives", "staff"):
        _register_optional(api, name)


def _register_optional(api: Api, name: str) -> None:
    """Areas that live in their own package register themselves when present."""
    import importlib

    try:
        module = importlib.import_module(f"miniprogram_api.{name}.views")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(f"miniprogram_api.{name}"):
            return
        raise
    for blp in getattr(module, "blueprints", [module.blp]):
        api.register_blueprint(blp, url_prefix="/api/mp/v1")
