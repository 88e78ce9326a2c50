"""The layering holds: the import contracts in `.importlinter`, and the rules import-linter cannot see.

import-linter reads the import graph, so it checks which module may import which (and finds cycles) but not which
names come in: `from flask import request` and `from flask import current_app` are both just "flask" to it. The
name rules are read here from the code's syntax tree.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

DOMAINS = ("accounts", "analytics", "catalog", "channel", "codes", "incentives", "inventory", "orders", "payments",
           "scans", "verification")
# What a request handler uses; a domain function takes plain values from its edge instead.
HTTP_NAMES = {"request", "g", "session", "jsonify", "make_response", "render_template", "redirect", "abort",
              "url_for", "Blueprint", "Response"}
# The HTTP edges that already keep the rule "an edge parses, calls one service or query, and renders": none of
# their modules touches the database session. (app/hq joins when its reads move to the domains' queries.)
THIN_EDGES = ("app/web", "miniprogram_api")


def test_import_contracts_hold():
    """`.importlinter`: core imports no domain; domains no edge and no marshmallow; the edges' shared answer
    shapes no edge; integrations no domain; the edges (mini-program, HQ, app.web) not each other; no cycles."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                               "sys.exit(lint_imports_command())", "--config", ".importlinter", "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[report.find("Broken contracts"):] or report
    assert "Contracts: 7 kept, 0 broken." in report, report


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_domains_use_no_request_objects():
    found = []
    for path in _sources(*(f"app/{d}" for d in DOMAINS)):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), rel)):
            if isinstance(node, ast.ImportFrom) and node.module == "flask":
                found += [f"{rel}:{node.lineno} flask.{a.name}" for a in node.names if a.name in HTTP_NAMES]
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "flask"
                  and node.attr in HTTP_NAMES):
                found.append(f"{rel}:{node.lineno} flask.{node.attr}")
    assert found == []


def test_thin_edges_touch_no_database_session():
    """An edge never reads or writes the database itself: `db` (and so `db.session`) is the domains' and core's."""
    found = []
    for path in _sources(*THIN_EDGES):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), rel)):
            if isinstance(node, ast.ImportFrom) and node.module == "app.extensions":
                found += [f"{rel}:{node.lineno} imports app.extensions.db" for a in node.names if a.name == "db"]
            elif isinstance(node, ast.Attribute) and node.attr == "session" and getattr(node.value, "id", "") == "db":
                found.append(f"{rel}:{node.lineno} uses db.session")
    assert found == []


def test_no_module_uses_another_modules_private_names():
    """A module's `_name` is its own: another module that needs it gets a public function instead."""
    found = []
    for path in _sources("app", "miniprogram_api"):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), rel)
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("app", "miniprogram_api"):
                for alias in node.names:
                    if alias.name.startswith("_"):
                        found.append(f"{rel}:{node.lineno} imports {node.module}.{alias.name}")
                    imported.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                imported |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith("app")}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                found.append(f"{rel}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert found == []
