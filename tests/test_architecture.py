"""What may import what: the rooms of the library and the layers around them (README, Architecture)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = {"income", "tasks", "workflows", "serving", "spark_jobs"}

# Who may import whom, by package or library room. The rooms stack: platform at the floor,
# then data, features, training, inference and monitoring; everything else stands on the library.
ALLOWED = {
    "income.platform": {"income.platform"},
    "income.data": {"income.platform", "income.data"},
    "income.features": {"income.platform", "income.data", "income.features"},
    "income.training": {"income.platform", "income.data", "income.features", "income.training"},
    "income.inference": {
        "income.platform",
        "income.data",
        "income.features",
        "income.training",
        "income.inference",
    },
    "income.monitoring": {
        "income.platform",
        "income.data",
        "income.features",
        "income.training",
        "income.inference",
        "income.monitoring",
    },
    "income.summary": {"income"},  # the demo's closing summary reads every room
    "income.overview": {"income"},  # so does the overview page
    "income.timeline": {"income"},  # and the simulation's timeline report
    "spark_jobs": {"income.data", "spark_jobs"},
    "feature_repo": {"income.platform", "income.data", "income.features"},
    "serving": {"income", "serving"},
    "tasks": {"income", "spark_jobs", "tasks"},
    "workflows": {"tasks", "workflows", "income"},  # wiring, and the types of its outputs
}


def owner(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[0] == "income" and len(parts) > 1:
        return f"income.{parts[1]}"
    return parts[0]


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """Every project module `path` imports (module level or inside functions), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] in PROJECT_PACKAGES]


def allowed(importer: str, module: str) -> bool:
    return any(module == prefix or module.startswith(f"{prefix}.") for prefix in ALLOWED[importer])


SOURCES = sorted(
    path
    for folder in ("income", "spark_jobs", "feature_repo", "serving", "tasks", "workflows")
    for path in (ROOT / folder).rglob("*.py")
)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layers(path):
    importer = owner(path)
    if importer == "income":  # income/__init__.py
        return
    wrong = [
        f"line {line}: {module}" for module, line in imported_modules(path) if not allowed(importer, module)
    ]
    assert not wrong, f"{importer} may import only {sorted(ALLOWED[importer])}; found {wrong}"


@pytest.mark.parametrize(
    "path", [p for p in SOURCES if owner(p).startswith(("income", "spark_jobs"))], ids=str
)
def test_library_and_spark_jobs_never_import_flyte_at_module_level(path):
    tree = ast.parse(path.read_text())
    modules = [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module]
    modules += [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m.split(".")[0] in {"flytekit", "flytekitplugins"}]


def test_every_module_opens_with_a_docstring_stating_its_job():
    missing = [
        str(p.relative_to(ROOT))
        for p in SOURCES
        if p.stat().st_size and not ast.get_docstring(ast.parse(p.read_text()))
    ]
    assert not missing, f"modules without an opening docstring: {missing}"


@pytest.mark.parametrize("path", [p for p in SOURCES if owner(p) == "tasks"], ids=str)
def test_tasks_are_declared_through_the_projects_decorators(path):
    """tasks.resources.task / spark_task run every task through tasks.execution.own_runtime (the
    isolated-runtime test mode); flytekit's own `task` would skip it."""
    if path.name == "resources.py":
        return
    tree = ast.parse(path.read_text())
    direct = [
        node.lineno
        for node in ast.walk(tree)
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "flytekit"
            and "task" in {a.name for a in node.names}
        )
        or (
            isinstance(node, ast.Attribute)
            and node.attr == "task"
            and getattr(node.value, "id", "") == "flytekit"
        )
    ]
    assert not direct, f"{path.name} uses flytekit's task directly (lines {direct}): use tasks.resources.task"
