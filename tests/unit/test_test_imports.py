"""Test modules share helpers through tests/helpers.py, a folder's helpers.py or conftest.py fixtures, never by
importing another test module or its private names."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent

# The two halves of the scope matrix share their actor, scope and route tables (public names, read-only). They
# move into one module with the walk of the console's write routes (issue 11, item 1).
SHARED_TABLES = {
    ("api/test_scope_matrix.py", "tests.api.test_scope_matrix_objects"),
    ("api/test_scope_matrix_objects.py", "tests.api.test_scope_matrix"),
}


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) for every `from tests... import ...` and `import tests...` in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests"):
            names = [alias.name for alias in node.names]
            out.append((node.module, names, node.lineno))
            # `from tests.api import test_scope_matrix` imports a module by name
            out += [(f"{node.module}.{n}", [], node.lineno) for n in names if n.startswith("test_")]
        elif isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names if alias.name.startswith("tests")]
    return out


def test_no_test_module_imports_another_or_its_private_helpers():
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        rel = path.relative_to(TESTS).as_posix()
        for module, names, line in _imports(path):
            private = [n for n in names if n.startswith("_")]
            if private:
                found.append(f"{rel}:{line} imports private {private} from {module}")
            if module.rsplit(".", 1)[-1].startswith("test_") and (rel, module) not in SHARED_TABLES:
                found.append(f"{rel}:{line} imports the test module {module}")
    assert found == []
