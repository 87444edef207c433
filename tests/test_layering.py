"""The dependency rules of DESIGN.md and docs/ARCHITECTURE.md, enforced by reading every module's source.

- each package imports only what its layer may (`FORBIDDEN`), at module level or inside functions;
- SQL lives in `store/`: `services/` and `ui/` run no query of their own (they may name `Session` and `Engine`
  in type hints, nothing else from SQLAlchemy), and no file anywhere uses the legacy `session.query(...)`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> top-level modules it must never import
FORBIDDEN: dict[str, set[str]] = {
    "core": {"gradio", "gradio_image_annotation", "sqlalchemy", "alembic", "store", "ui", "services"},
    "store": {"torch", "torchvision", "core", "ui", "gradio", "services"},
    "services": {"ui", "gradio", "gradio_image_annotation"},
    "ui": {"sqlalchemy", "alembic", "store"},
    # small helpers every layer may use (standard library and Pillow): nothing of the project, no heavy library
    "common": {"core", "store", "services", "ui", "torch", "torchvision", "cv2", "gradio", "sqlalchemy"},
}
# packages whose imports sit at the top of a module; one inside a function needs a comment saying why
# (an optional or heavy dependency kept off a quick path such as `app.py --help`)
TOP_LEVEL_IMPORTS = ("app.py", "common", "core", "services", "store", "ui")

# packages that hold no SQL: what they may import from SQLAlchemy (type hints of what they pass along)
SQL_FREE = ("services", "ui")
SQLALCHEMY_TYPES = {"sqlalchemy": {"Engine"}, "sqlalchemy.orm": {"Session"}}
# what a session does when it runs SQL itself: outside store/ that is a query that belongs in a repository function
SESSION_SQL_METHODS = {"query", "get", "get_one", "scalar", "scalars", "execute"}
SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "build", "dist"}


def python_files(root: Path) -> list[Path]:
    """Every `.py` file under `root`, leaving out virtual environments, caches and hidden folders."""
    return sorted(path for path in root.rglob("*.py")
                  if not any(part in SKIPPED_DIRS or part.startswith(".") for part in path.relative_to(root).parts))


def parse(path: Path) -> ast.Module:
    """The module's syntax tree."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imported_top_levels(path: Path) -> set[tuple[str, int]]:
    """Top-level names of every import in a file (absolute imports only), with line numbers."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            found.update((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def sqlalchemy_imports(path: Path) -> set[tuple[str, int]]:
    """`module.name` for every SQLAlchemy import that is not one of `SQLALCHEMY_TYPES`, with line numbers."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            found.update((a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "sqlalchemy")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "sqlalchemy":
            allowed = SQLALCHEMY_TYPES.get(node.module or "", set())
            found.update((f"{node.module}.{a.name}", node.lineno) for a in node.names if a.name not in allowed)
    return found


def _is_session(node: ast.expr) -> bool:
    """A name like `session` / `other_session`, or a session made in place (`Session(engine)`)."""
    if isinstance(node, ast.Name):
        return "session" in node.id.lower()
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return name in ("Session", "session_factory")
    return False


def session_calls(path: Path, methods: set[str]) -> set[tuple[str, int]]:
    """`session.<method>(...)` calls among `methods`, with line numbers."""
    return {(f"session.{node.func.attr}(", node.lineno) for node in ast.walk(parse(path))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in methods and _is_session(node.func.value)}


def _report(rows: list[str], what: str) -> str:
    return f"{what}:\n" + "\n".join(rows)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_layering(package: str) -> None:
    files = python_files(ROOT / package)
    assert files, f"{package}/ has no Python files"
    violations = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in files
        for name, line in imported_top_levels(path)
        if name in FORBIDDEN[package]
    ]
    assert not violations, _report(violations, "layering rule broken")


@pytest.mark.parametrize("package", SQL_FREE)
def test_sql_lives_in_store(package: str) -> None:
    files = python_files(ROOT / package)
    violations = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                  for path in files for name, line in sqlalchemy_imports(path)]
    violations += [f"{path.relative_to(ROOT)}:{line} calls {call}: make it a repository function in store/"
                   for path in files for call, line in session_calls(path, SESSION_SQL_METHODS)]
    assert not violations, _report(violations, f"SQL outside store/ in {package}/")


def test_no_legacy_session_query_anywhere() -> None:
    violations = [f"{path.relative_to(ROOT)}:{line} calls {call}: use select() in a store repository function"
                  for path in python_files(ROOT) for call, line in session_calls(path, {"query"})]
    assert not violations, _report(violations, "session.query (SQLAlchemy 1.x) found")


def _commented(lines: list[str], index: int) -> bool:
    """Whether the import at `lines[index]`, or the block of imports it closes, carries a comment."""
    while index >= 0:
        text = lines[index].strip()
        if "#" in text:
            return True
        if not text.startswith(("import ", "from ")):
            return False
        index -= 1
    return False


def uncommented_function_imports(path: Path) -> list[int]:
    """Lines of imports inside functions with no comment on the line or above its block of imports."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom) and not _commented(lines, inner.lineno - 1):
                    found.append(inner.lineno)
    return sorted(set(found))


@pytest.mark.parametrize("package", TOP_LEVEL_IMPORTS)
def test_imports_inside_functions_say_why(package: str) -> None:
    files = [ROOT / package] if package.endswith(".py") else python_files(ROOT / package)
    violations = [f"{path.relative_to(ROOT)}:{line}" for path in files
                  if "migrations" not in path.parts for line in uncommented_function_imports(path)]
    assert not violations, _report(violations, "import inside a function without a comment saying why "
                                               "(move it to the top, or say which heavy/optional dependency it defers)")


def test_checker_sees_violations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom sqlalchemy.orm import Session, aliased\nfrom sqlalchemy import Engine, select\n"
                   "def f(session, engine):\n    import gradio as gr\n    session.query(X).all()\n"
                   "    Session(engine).query(X)\n    other_session.scalar(select(X))\n    client.query('ok')\n")
    names = {name for name, _ in imported_top_levels(bad)}
    assert {"sqlalchemy", "gradio", "os"} <= names
    assert {name for name, _ in sqlalchemy_imports(bad)} == {"sqlalchemy.orm.aliased", "sqlalchemy.select"}
    assert session_calls(bad, {"query"}) == {("session.query(", 6), ("session.query(", 7)}
    assert session_calls(bad, SESSION_SQL_METHODS) == {("session.query(", 6), ("session.query(", 7),
                                                       ("session.scalar(", 8)}
    assert uncommented_function_imports(bad) == [5]
    bad.write_text("def f():\n    import torch  # heavy\n    # optional\n    import gradio\n    import cv2\n")
    assert uncommented_function_imports(bad) == []
    hidden = tmp_path / ".venv" / "lib" / "x.py"
    hidden.parent.mkdir(parents=True)
    hidden.write_text("session.query(X)\n")
    assert python_files(tmp_path) == [bad]
