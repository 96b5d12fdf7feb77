"""The core takes configuration as arguments: no module under ``spoton/`` but the CLI reads the environment.

Checked from the source with ``ast`` (nothing is imported): any use of ``os.environ``/``os.environb``
or a call to ``os.getenv`` & co., through any alias of ``os``, and ``from os import environ``-style
imports. The edges (CLI, Dagster resources, the live API's settings, benches, tests) read variables
such as ``SPOTON_CACHE`` and pass their values down.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
EDGES = {"spoton/cli.py"}  # the command line is an edge: it reads its variables and passes them down


def environment_reads(path: Path) -> list[str]:
    """``line: what`` for each place ``path`` touches the process environment."""
    tree = ast.parse(path.read_text(), filename=str(path))
    os_names = {"os"} | {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                         for alias in node.names if alias.name == "os"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [f"{node.lineno}: from os import {a.name}" for a in node.names if a.name in ENVIRONMENT_NAMES]
        elif (isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_NAMES
              and isinstance(node.value, ast.Name) and node.value.id in os_names):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return sorted(found, key=lambda read: int(read.split(':')[0]))


def test_the_check_sees_every_way_of_reading_the_environment(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import os\nimport os as o\nfrom os import getenv as g, path\n"
                      "a = os.environ.get('A')\nb = o.getenv('B')\nc = os.environ['C']\n"
                      "d = os.path.join('x', 'y')\ndef f(environ):\n    return environ.get('D')\n")
    assert environment_reads(source) == ["3: from os import getenv", "4: os.environ", "5: o.getenv", "6: os.environ"]


def test_no_core_module_but_the_cli_reads_the_environment():
    modules = sorted((REPO_ROOT / "spoton").rglob("*.py"))
    assert len(modules) > 50, "the check should cover the core's modules"
    offenders = [f"{path.relative_to(REPO_ROOT).as_posix()}:{read}" for path in modules
                 if path.relative_to(REPO_ROOT).as_posix() not in EDGES for read in environment_reads(path)]
    assert not offenders, ("spoton/ takes configuration as arguments (the edges read the environment and pass it "
                           "down, e.g. spoton.artifacts.cache_dir_from(os.environ)): " + "; ".join(offenders))
