"""The one registry of names (core/methods.py): torch-free, and the heavy registries follow it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core import methods

ROOT = Path(__file__).resolve().parents[2]


def test_the_registry_and_the_training_schema_import_without_torch() -> None:
    code = "import sys, core.methods, core.train.config; assert 'torch' not in sys.modules, 'torch was imported'"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_heavy_registries_implement_exactly_the_declared_names() -> None:
    from core.bcos import ARCHITECTURES
    from core.explain import EXPLAINERS
    from core.explain.layers import LAYER_NAMES
    from core.guidance import LOSSES

    assert set(EXPLAINERS) == set(methods.METHODS)
    assert set(LOSSES) == set(methods.LOSSES)
    assert set(ARCHITECTURES) == set(methods.ARCHITECTURES)
    assert tuple(methods.LAYERS) == LAYER_NAMES


def test_a_forgotten_registry_line_fails_at_import_naming_it() -> None:
    with pytest.raises(ImportError, match=r"not implemented \['b'\], not declared \['c'\]"):
        methods.check_implemented("loss", {"a": 1, "c": 2}, {"a": 1, "b": 2})


def test_capabilities_replace_name_checks() -> None:
    assert methods.default_method(is_bcos=True) == "bcos" and methods.default_method(is_bcos=False) == "ixg"
    assert not methods.METHODS["gradcam"].supports("input") and methods.METHODS["gradcam"].supports("final")
    assert methods.evaluation_layer("gradcam") == "final" and methods.evaluation_layer("bcos") == "input"
    assert [m for m in methods.METHODS.values() if m.colour_view] == [methods.METHODS["bcos"]]
    assert all(not m.needs_bcos for m in methods.METHODS.values() if m.name != "bcos")


def test_a_new_explainer_is_found_by_its_class_and_a_new_loss_by_its_file() -> None:
    import core.explain
    import core.guidance
    from core.explain import Explainer

    class Saliency(Explainer):  # what a new file in core/explain/ would define
        name = "saliency_test"

    assert core.explain._discover()["saliency_test"] is Saliency
    with pytest.raises(ImportError, match=r"core/guidance/nope\.py does not define nope_loss"):
        core.guidance._load("nope")
