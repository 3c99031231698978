"""The import contract: UI (app.py, pages/, components/) -> engine (embedlab/) -> storage (storage/), never back, the UI
never reaching storage directly, no circle among the project's modules, and imports at the top of the module: at most
FUNCTION_LEVEL_BUDGET imports of our own modules inside functions, each with a comment giving its measured reason.

The layers are import-linter contracts in pyproject.toml (`lint-imports`); `pages` is a namespace package to it.
`app.py` is a lone script, no package: its imports are read here. Circles are found here with grimp, module by module
(import-linter's only cycle contract compares whole sibling packages). A second set of tests copies the project, breaks
the contract on purpose and shows each check failing on it, naming the import.
"""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pages", "components", "embedlab", "storage")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
OWN = ("app", "pages", "components", "embedlab", "storage")
FUNCTION_LEVEL_BUDGET = 20

# Tarjan's strongly connected components over grimp's graph of direct imports (function-level ones included), run in
# a fresh interpreter whose working directory is the tree to check (so a copy is read, not the installed project).
CYCLES_SCRIPT = """
import json, sys
import grimp

graph = grimp.build_graph(*sys.argv[1:], cache_dir=None)
edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
index, low, stack, on_stack, circles = {}, {}, [], set(), []

def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        part = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            part.append(w)
            if w == v:
                break
        if len(part) > 1:
            circles.append(sorted(part))

sys.setrecursionlimit(10_000)
for module in edges:
    if module not in index:
        visit(module)
print(json.dumps(sorted(circles)))
"""


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` with the project's contracts (pyproject.toml of `root`), run in `root`."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=root, capture_output=True, text=True,
                          timeout=300)


def module_circles(root: Path) -> list[list[str]]:
    """Each set of the project's modules that import each other in a circle (directly or through others)."""
    done = subprocess.run([sys.executable, "-c", CYCLES_SCRIPT, *PACKAGES], cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def storage_imports_of_app(root: Path) -> list[str]:
    """The storage modules app.py imports (anywhere in the file), as "line: module"."""
    tree = ast.parse((root / "app.py").read_text())
    found = []
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        found += [f"{node.lineno}: {name}" for name in names if name == "storage" or name.startswith("storage.")]
    return found


def function_level_imports(source: str) -> list[tuple[int, str, bool]]:
    """(line, module, explained) of each import of our own modules inside a function of `source`; explained: a comment
    on the import's line or on the line just above it."""
    lines = source.splitlines()
    found = set()
    for func in ast.walk(ast.parse(source)):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [("." * node.level) + (node.module or "")]
            else:
                continue
            for module in modules:
                if module.startswith(".") or module.split(".")[0] in OWN:
                    above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                    explained = "#" in lines[node.lineno - 1] or above.startswith("#")
                    found.add((node.lineno, module, explained))
    return sorted(found)


def project_sources(root: Path) -> dict[str, str]:
    """Path (relative to `root`) -> text of every Python file of the app, the UI, the engine and storage."""
    files = [root / "app.py", *(p for package in PACKAGES for p in (root / package).rglob("*.py"))]
    return {str(p.relative_to(root)): p.read_text() for p in sorted(files) if "__pycache__" not in p.parts}


def test_the_ui_engine_and_storage_layers_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, "the import contract is broken (lint-imports):\n" + done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout


def test_app_py_reaches_storage_only_through_the_engine():
    assert storage_imports_of_app(ROOT) == [], "app.py imports storage directly"


def test_no_module_imports_itself_in_a_circle():
    assert module_circles(ROOT) == []


def test_imports_of_our_modules_are_at_the_top_but_a_few_explained_ones():
    found = {f"{path}:{line}: {module}": explained for path, text in project_sources(ROOT).items()
             for line, module, explained in function_level_imports(text)}
    print("\n".join(found))
    assert len(found) <= FUNCTION_LEVEL_BUDGET, f"{len(found)} function-level imports of our modules: {list(found)}"
    assert [where for where, explained in found.items() if not explained] == [], "give each its measured reason"


def test_the_function_level_import_count_sees_imports_and_their_reasons():
    source = """
import embedlab.cli

def one():
    # measured: 30 ms at start-up
    from embedlab import cli_commands
    import numpy
    from storage.db import connect
    return cli_commands, numpy, connect

class Page:
    def draw(self):
        import components.state  # measured: 0.1 s before the first draw
        from . import sibling
"""
    assert function_level_imports(source) == [(6, "embedlab", True), (8, "storage.db", False),
                                              (13, "components.state", True), (14, ".", False)]


# --- the checks fail on a deliberate violation ----------------------------------------------------------------------

def project_copy(tmp_path: Path) -> Path:
    """The packages, app.py and pyproject.toml copied to a fresh folder (caches left out)."""
    root = tmp_path / "project"
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("app.py", "pyproject.toml"):
        shutil.copy2(ROOT / name, root / name)
    return root


def append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_a_storage_import_in_the_ui_or_an_engine_import_in_storage_breaks_the_contract(tmp_path):
    root = project_copy(tmp_path)
    assert lint_imports(root).returncode == 0          # the copy keeps the contract, as the project does
    append(root / "components" / "state.py", "import storage.sessions  # deliberate violation")
    append(root / "storage" / "content.py", "import embedlab.corpus  # deliberate violation")
    done = lint_imports(root)
    assert done.returncode == 1
    assert "Contracts: 0 kept, 2 broken." in done.stdout
    assert "components.state -> storage.sessions" in done.stdout
    assert "storage.content -> embedlab.corpus" in done.stdout


def test_a_storage_import_in_app_py_is_found(tmp_path):
    root = project_copy(tmp_path)
    append(root / "app.py", "from storage.db import connect  # deliberate violation")
    assert storage_imports_of_app(root) == [f"{len((root / 'app.py').read_text().splitlines())}: storage.db"]


def test_a_circle_of_imports_is_found(tmp_path):
    root = project_copy(tmp_path)
    append(root / "storage" / "schema.py", "def _late():\n    import storage.db  # deliberate: db imports schema")
    assert module_circles(root) == [["storage.db", "storage.schema"]]
