"""The README and docs/ stay true to the code: every Python example compiles, names
nothing it does not define or import (besides the user's own code the text says to
write) and imports only what exists; the README's example problem file loads and builds
its search space and clusters; every relative link of the project's Markdown files
points at a file that exists."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from moo_compress.problem_file import load_problem_class

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
USER_CODE = {"run_on_my_board"}
"""Names an example leaves to the user's own code (the text says so)."""
USER_MODULES = {"my_boards"}
"""Modules an example imports from the user's own code."""
BLOCK = re.compile(r"^([ \t]*)```python\n(.*?)^[ \t]*```", re.S | re.M)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _blocks() -> list[tuple[str, str]]:
    """(``file:line``, dedented code) of every ```python block of the docs."""
    found = []
    for path in DOCS:
        text = path.read_text()
        for match in BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", textwrap.dedent(match.group(2))))
    return found


BLOCKS = _blocks()


def test_the_docs_have_examples() -> None:
    where = {w.split(":")[0] for w, _ in BLOCKS}
    assert {"README.md", "docs/adding_a_device.md"} <= where, where


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[w for w, _ in BLOCKS])
def test_example_imports_exist(where: str, code: str) -> None:
    tree = ast.parse(code, filename=where)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in USER_MODULES:
                    importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module not in USER_MODULES:
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{where}: {node.module}.{alias.name}"


def test_examples_define_every_name_they_use(tmp_path: Path) -> None:
    for i, (_, code) in enumerate(BLOCKS):
        (tmp_path / f"block_{i}.py").write_text(code)
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--select", "F821"]
        + ["--output-format", "json", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode in (0, 1), result.stderr
    undefined = [
        f"{BLOCKS[int(Path(d['filename']).stem.split('_')[1])][0]}: {d['message']}"
        for d in json.loads(result.stdout)
        if d["message"].removeprefix("Undefined name `").rstrip("`") not in USER_CODE
    ]
    assert not undefined, undefined


def test_the_readme_problem_file_builds(tmp_path: Path) -> None:
    code = next(c for w, c in BLOCKS if w.startswith("README") and "FleetCompression" in c)
    path = tmp_path / "example_problem.py"
    path.write_text(code)
    problem = load_problem_class(path)(seed=0)
    assert problem.name == "mobilenet_pi4"
    assert problem.space.n_var > 0 and problem.clusters.k >= 1
    assert problem.max_worst_latency_ms == 150.0


def test_relative_links_point_at_files() -> None:
    pages = [*DOCS, *sorted((ROOT / "benchmarks").glob("*.md"))]
    broken = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in pages
        for target in LINK.findall(page.read_text())
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert not broken, broken
