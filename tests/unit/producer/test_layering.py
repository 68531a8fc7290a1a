"""The producer sits below the services and the application: it never imports them."""

import ast
from pathlib import Path

import producer

ALLOWED_FIRST_PARTY = {"producer", "schemas", "streaming", "model"}
FIRST_PARTY = ALLOWED_FIRST_PARTY | {"txguard", "consumers", "benchmarks", "tests"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_producer_imports_only_lower_packages():
    root = Path(producer.__file__).parent
    wrong = {
        str(path.relative_to(root)): sorted(imported_packages(path) & (FIRST_PARTY - ALLOWED_FIRST_PARTY))
        for path in root.rglob("*.py")
    }
    assert {path: names for path, names in wrong.items() if names} == {}
