"""The dependency rules of DESIGN.md, enforced by reading every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> top-level modules it must never import
FORBIDDEN: dict[str, set[str]] = {
    "core": {"gradio", "gradio_image_annotation", "sqlalchemy", "alembic", "store", "ui", "services"},
    "store": {"torch", "torchvision", "core", "ui", "gradio", "services"},
}


def imported_top_levels(path: Path) -> set[tuple[str, int]]:
    """Top-level names of every import in a file (absolute imports only), with line numbers."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_layering(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    violations = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in files
        for name, line in imported_top_levels(path)
        if name in FORBIDDEN[package]
    ]
    assert not violations, "layering rule broken:\n" + "\n".join(violations)


def test_checker_sees_violations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom sqlalchemy.orm import Session\ndef f():\n    import gradio as gr\n")
    names = {name for name, _ in imported_top_levels(bad)}
    assert {"sqlalchemy", "gradio", "os"} <= names
