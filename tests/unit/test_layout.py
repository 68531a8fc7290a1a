"""The architecture, checked: each package imports only the ones below it, and no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Bottom to top. A package may import the ones listed for it, and nothing above.
ALLOWED = {
    "schemas": set(),
    "model": {"schemas"},
    "streaming": {"schemas"},
    "producer": {"schemas", "streaming"},
    "consumers": {"schemas", "streaming", "model"},
    "txguard": {"schemas", "streaming", "model", "producer", "consumers"},
}
CLIENT_LIBRARIES = {"confluent_kafka", "kafka", "boto3", "botocore", "psycopg2"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, at any depth (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = module.split(".")[: -node.level] if path.name != "__init__.py" else module.split(".")
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = _modules()
GRAPH = {m: {i for i in _imports(p, m) if i in MODULES and i != m} for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_packages_below(module):
    package = module.split(".")[0]
    upward = {i for i in GRAPH[module] if i.split(".")[0] not in ALLOWED[package] | {package}}
    assert not upward, f"{module} imports {sorted(upward)}: {package} may import only {sorted(ALLOWED[package])}"


@pytest.mark.parametrize("package", ["model", "schemas"])
def test_pure_packages_import_no_client_library(package):
    for module, path in MODULES.items():
        if module.split(".")[0] == package:
            clients = {i.split(".")[0] for i in _imports(path, module)} & CLIENT_LIBRARIES
            assert not clients, f"{module} imports client libraries {sorted(clients)}"


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(GRAPH[module]):
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
