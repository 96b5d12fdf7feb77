"""The project's import graph has no cycle, and the core imports no framework.

The graph is built from the source with ``ast`` (no module is imported): every ``import`` and
``from ... import`` statement counts, at module level and inside functions alike, since an import
inside a function that dodges a cycle is still a cycle in the design. Two graphs are checked: the
modules, and the top-level folders (``assets -> orchestration -> assets`` is a cycle even when no
two modules import each other).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("spoton", "assets", "resources", "orchestration", "apps")
CORE_FORBIDDEN = ("dagster", "dagster_aws", "dagster_duckdb", "fastapi", "starlette", "streamlit", "uvicorn")


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    return {module_name(path, root): path for package in packages for path in sorted((root / package).rglob("*.py"))}


def imported_names(path: Path, name: str) -> list[str]:
    """Every module name ``path`` imports (absolute; ``from X import Y`` gives X and X.Y)."""
    is_package = path.name == "__init__.py"
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return names


def resolve(imported: str, importer: str, path: Path, modules: dict[str, Path]) -> str | None:
    """The project module an import name means, or None for a third-party one.

    Folders without ``__init__.py`` (the Streamlit app) run as scripts: a bare name there is a sibling.
    """
    candidates = [imported]
    if not (path.parent / "__init__.py").is_file():
        candidates.append(".".join(importer.split(".")[:-1] + [imported]))
    for candidate in candidates:
        if candidate in modules and candidate != importer:
            return candidate
    return None


def module_graph(root: Path = REPO_ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    modules = project_modules(root, packages)
    graph = {}
    for name, path in modules.items():
        targets = {resolve(imported, name, path, modules) for imported in imported_names(path, name)}
        graph[name] = targets - {None}
    return graph


def folder_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Top-level folders: an edge where any module of one imports any module of another."""
    folders: dict[str, set[str]] = {}
    for module, targets in graph.items():
        top = module.split(".")[0]
        folders.setdefault(top, set()).update(t.split(".")[0] for t in targets if t.split(".")[0] != top)
    return folders


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, iterators = [start], [iter(sorted(graph.get(start, ())))]
        state[start] = 1
        while iterators:
            child = next(iterators[-1], None)
            if child is None:
                state[path.pop()] = 2
                iterators.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                iterators.append(iter(sorted(graph.get(child, ()))))
    return None


def test_find_cycle_reports_the_cycle_path():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_graph_sees_function_level_relative_and_script_imports(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "app").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("from . import leaf\n")
    (tmp_path / "pkg" / "sub" / "leaf.py").write_text("def f():\n    from ..top import g\n")
    (tmp_path / "pkg" / "top.py").write_text("import numpy\nfrom pkg.sub import leaf\n")
    (tmp_path / "app" / "main.py").write_text("import helper\n")
    (tmp_path / "app" / "helper.py").write_text("from pkg import top\n")
    graph = module_graph(tmp_path, ("pkg", "app"))
    assert graph["pkg.sub.leaf"] == {"pkg.top"}
    assert graph["pkg.top"] == {"pkg.sub", "pkg.sub.leaf"}
    assert graph["app.main"] == {"app.helper"}
    cycle = find_cycle(graph)
    assert cycle[0] == cycle[-1] and set(cycle) == {"pkg.top", "pkg.sub", "pkg.sub.leaf"}
    assert folder_graph(graph) == {"pkg": set(), "app": {"pkg"}}


@pytest.mark.parametrize("level", ["modules", "folders"])
def test_project_has_no_import_cycle(level):
    graph = module_graph()
    assert len(graph) > 50, "the graph should cover the project's modules"
    cycle = find_cycle(graph if level == "modules" else folder_graph(graph))
    assert cycle is None, f"import cycle between {level}: {' -> '.join(cycle)}"


def test_core_imports_no_framework():
    offenders = []
    for name, path in project_modules(REPO_ROOT, ("spoton",)).items():
        for imported in imported_names(path, name):
            if imported.split(".")[0] in CORE_FORBIDDEN:
                offenders.append(f"{name} imports {imported}")
    assert not offenders, "spoton/ must stay free of Dagster, FastAPI and Streamlit: " + "; ".join(offenders)
