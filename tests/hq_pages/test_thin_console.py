"""The console and the HQ analytics API are thin edges: they parse, call a domain's service or query, and render.

They never touch the database session (reads are in the domains' `queries.py`, filtered there by the caller's
scope) and never check scope themselves (the services do, with the caller they are handed)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EDGES = ("app/hq/pages.py", "app/hq/order_pages.py", "app/hq/code_pages.py", "app/hq/catalog_pages.py",
         "app/hq/channel_pages.py", "app/hq/api/analytics.py", "app/hq/training_pages.py", "app/hq/api/training.py",
         "app/hq/referral_pages.py")


def _imports_and_names(path: str) -> tuple[set[str], set[str]]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    imported: set[str] = set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.Name):
            names.add(node.id)
    return imported, names


@pytest.mark.parametrize("path", EDGES)
def test_edge_never_touches_the_session_nor_checks_scope(path):
    imported, names = _imports_and_names(path)
    assert not {i for i in imported if i.startswith(("app.extensions", "sqlalchemy"))}, imported
    assert not ({"authorize", "authorize_store", "authorize_action"} & names), "scope is the services' business"
