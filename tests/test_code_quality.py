"""The code-quality checks CI runs inside the test command (issue 11).

ruff (lint and format), mypy on the package, the import-linter layers contract in
pyproject.toml (DESIGN.md data flow: io, measure and classify never import upwards),
the docstring examples of the package, and the packaged copy of the report schema.
Outside CI a missing tool skips its test; with ``CI=true`` it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, shared_file

IN_CI = os.environ.get("CI", "").lower() == "true"
CHECKED_TREES = ["netlm_imaging", "tests", "pipelines", "benchmarks", "sample_data"]


def _need(module: str) -> None:
    """Skip (outside CI) or fail (CI=true) when a checking tool is not installed."""
    if importlib.util.find_spec(module) is None:
        msg = f"{module} is not installed; pip install -e '.[test]'"
        if IN_CI:
            pytest.fail(f"CI=true but {msg}")
        pytest.skip(msg)


def _run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def test_ruff_check_is_clean():
    _need("ruff")
    r = _run([sys.executable, "-m", "ruff", "check", *CHECKED_TREES])
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_format_is_clean():
    _need("ruff")
    r = _run([sys.executable, "-m", "ruff", "format", "--check", *CHECKED_TREES])
    assert r.returncode == 0, "run `ruff format` on:\n" + r.stdout + r.stderr


def test_mypy_has_no_errors():
    _need("mypy")
    r = _run([sys.executable, "-m", "mypy", "netlm_imaging"])
    assert r.returncode == 0, r.stdout + r.stderr


def test_import_layers_contract_is_kept():
    """io, measure and classify do not import upwards (the layers contract in pyproject.toml)."""
    _need("importlinter")
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    r = _run([sys.executable, "-c", code])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "BROKEN" not in r.stdout


def test_import_layers_contract_waives_nothing():
    """No layer violation is waived: the layers contract lists no ``ignore_imports``."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = [c for c in contracts if c["type"] == "layers"]
    assert layers
    assert [c.get("ignore_imports", []) for c in layers] == [[]] * len(layers)
    assert "netlm_imaging.measure | netlm_imaging.io" in layers[0]["layers"]


def test_package_doctests_pass():
    """The examples in the package's docstrings run (``--doctest-modules`` over netlm_imaging)."""
    r = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules", "netlm_imaging"],
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout


def test_packaged_schema_is_the_shared_contract():
    """The schema the package validates against is byte-identical to ../shared/report.schema.json."""
    shared = shared_file("report.schema.json")
    from netlm_imaging.report.model import load_schema

    packaged = ROOT / "netlm_imaging" / "report" / "report.schema.json"
    assert packaged.read_bytes() == shared.read_bytes()
    assert load_schema() == json.loads(shared.read_text())  # and it is the copy the package loads


def test_long_modules_say_why_at_their_top():
    """STYLE.md: modules of about 150-600 lines; a longer one says at its top why it is one module."""
    import ast

    unexplained = []
    for p in sorted((ROOT / "netlm_imaging").rglob("*.py")):
        text = p.read_text()
        if text.count("\n") <= 600:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if "Why one module" not in doc.split("\n\n", 2)[1 if "\n\n" in doc else 0]:
            unexplained.append(p.relative_to(ROOT).as_posix())
    assert unexplained == []


def _module_imports() -> dict[str, set[str]]:
    """Each module of the package -> the package modules it imports anywhere (top level, in functions, under
    TYPE_CHECKING), relative imports resolved; ``from pkg import name`` counts ``pkg.name`` when it is a module."""
    import ast

    pkg = ROOT / "netlm_imaging"
    names = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in pkg.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for mod, path in names.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        out: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    out.add(target if target in names else base)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
        graph[mod] = {m for m in out if m in names and m != mod}
    return graph


def test_no_import_cycles_between_modules():
    """One-way house (issue 11): no two modules import each other, not even for type hints or inside functions."""
    graph = _module_imports()
    assert "netlm_imaging.io.rtstruct_planes" in graph  # the walk reads the package
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == []
