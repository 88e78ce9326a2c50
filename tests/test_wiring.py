"""The app's wiring is explicit: every blueprint and command group is there, and no import failure is swallowed.

When a module that holds routes or commands goes missing, building the app fails; these tests pin the full lists
so a route area or a command group cannot vanish without a test saying so.
"""

from __future__ import annotations

import ast
from pathlib import Path

from app.demo.seed import EXTRA_SEEDS

ROOT = Path(__file__).resolve().parent.parent

BLUEPRINTS = {
    "health", "metrics", "web", "api-docs",
    # mini-program API
    "mp_sessions", "mp_invites", "mp_catalog", "mp_stock", "mp_scans", "mp_orders", "mp_incentives", "mp_staff",
    "mp_registrations", "mp_consumer_orders", "mp_workspace", "mp_ratings", "mp_targets", "mp_training",
    "mp_referrals", "mp_assessment",
    # HQ API
    "hq_sessions", "hq_catalog", "hq_channel", "hq_territories", "hq_warehouses", "hq_codes", "hq_orders",
    "hq_analytics", "hq_users",
    "hq_registrations", "hq_consumer_orders", "hq_targets", "hq_training", "hq_referrals", "hq_assessment",
    # console, public pages, WeChat Pay callbacks
    "hq_pages", "public_verify", "public_pages", "wechat_pay_callbacks",
}

COMMANDS = {
    "stock": {"verify"},
    "orders": {"expire", "reconcile"},
    "analytics": {"fold", "rebuild"},
    "demo": {"pay", "cases"},
    "seed-demo": set(),
    "create-hq-user": set(),
    "partitions": {"list", "ensure", "archive"},
    # from Flask-Migrate and flask-smorest
    "db": None,
    "openapi": None,
}


def test_every_blueprint_is_registered(app):
    assert set(app.blueprints) == BLUEPRINTS


def test_every_command_group_is_registered(app):
    assert set(app.cli.commands) == set(COMMANDS)
    for name, subcommands in COMMANDS.items():
        if subcommands is not None:
            assert set(getattr(app.cli.commands[name], "commands", {})) == subcommands, name


def test_demo_steps_are_listed_in_order():
    assert [step.__name__ for step in EXTRA_SEEDS] == ["app.demo.codes", "app.demo.history", "app.demo.orders",
                                                     "app.demo.registrations", "app.demo.consumer_orders",
                                                     "app.demo.targets", "app.demo.training",
                                                     "app.demo.referrals", "app.demo.assessment"]
    assert all(callable(step.seed) for step in EXTRA_SEEDS)


def _swallowed_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            names = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            if any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_module_catches_an_import_error():
    """A missing module must fail loudly at start-up, never make its routes, commands or features vanish."""
    found = [hit for package in ("app", "miniprogram_api") for path in sorted((ROOT / package).rglob("*.py"))
             for hit in _swallowed_imports(path)]
    assert found == []
