"""HQ API blueprints (`/api/hq/v1`)."""

import importlib

from flask_smorest import Api

# Each module exposes `blp` (or `blueprints`); modules of areas not built yet are skipped.
MODULES = ("sessions", "catalog", "channel", "warehouses", "codes", "orders", "analytics", "stock", "users")


def register(api: Api) -> None:
    for name in MODULES:
        try:
            module = importlib.import_module(f"app.hq.api.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"app.hq.api.{name}":
                continue
            raise
        for blp in getattr(module, "blueprints", [getattr(module, "blp", None)]):
            if blp is not None:
                api.register_blueprint(blp, url_prefix="/api/hq/v1")
