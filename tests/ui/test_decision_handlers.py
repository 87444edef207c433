"""The decision (class vs the runner-up) beside the class logit: Explain's map, Compare's EPG rows (issue 23)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.bcos import build_model, explanation_mode
from core.data import images_to_batch, load_rgb
from core.train import file_sha256, load_checkpoint, save_checkpoint
from services import catalog
from services.models import checkpoint_file
from store.db import session_scope
from store.projects import get_project
from store.runs import record_evaluation, register_checkpoint
from tests.ui.conftest import CLASSES, SIZE, TinyProject
from ui.handlers import compare, explain

CLASS_ROW, DECISION_ROW = "EPG (class logit)", "EPG (decision: class vs runner-up)"


def _decision_by_hand(tiny: TinyProject, image_id: int, explained: int) -> np.ndarray:
    """B-cos contributions at the input of `logit_t − max_{c≠t} logit_c`, computed here from the model."""
    request = explain.target(tiny.deps, tiny.name, image_id).request
    model = load_checkpoint(checkpoint_file(tiny.deps.settings, request.checkpoint_path)).model.eval()
    encoder = dict(model.named_modules())[model.explain_layers["input"]]
    captured: list[torch.Tensor] = []
    handle = encoder.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        images = images_to_batch([load_rgb(request.image_path)], SIZE).requires_grad_()  # (1, 3, S, S)
        logits = model(images)[0]  # (C,)
        runner_up = max((c for c in range(len(CLASSES)) if c != explained), key=lambda c: float(logits[c].detach()))
        with explanation_mode(model):  # the dynamic factors as constants: the gradient is W(x)
            (weights,) = torch.autograd.grad(logits[explained] - logits[runner_up], captured[0])
    finally:
        handle.remove()
    return (weights * captured[0]).sum(1)[0].detach().numpy()  # (S, S): the tiny images are S × S


def test_explain_decision_map_is_the_contrast_explanation_and_not_the_class_map(tiny: TinyProject) -> None:
    image = tiny.image_ids[0]
    plain = explain.explain_image(tiny.deps, tiny.name, image, "B-cos", "Input", "warm")
    decision = explain.explain_image(tiny.deps, tiny.name, image, "B-cos", "Input", "warm", False, explain.DECISION)
    assert decision[0] != plain[0] and decision[2] == plain[2]  # another picture; the same prediction
    assert "**warm** (class logit)" in plain[3]
    assert "decision “warm” over “cool”" in decision[3]  # the caption names the target and the runner-up
    request = explain.target(tiny.deps, tiny.name, image).request
    made = tiny.deps.explanations.explain(request, "bcos", "input", 0, decision=True)  # cached: the one shown
    class_map = tiny.deps.explanations.explain(request, "bcos", "input", 0).map()
    by_hand = _decision_by_hand(tiny, image, 0)
    scale = float(np.abs(by_hand).max())
    np.testing.assert_allclose(made.map(), by_hand, atol=1e-4 * scale, rtol=0)
    assert float(np.abs(made.map() - class_map).max()) > 1e-2 * scale  # not the class logit's map again


def test_decision_is_offered_on_single_label_projects_only(tiny: TinyProject) -> None:
    assert explain.score_choices(tiny.deps, tiny.name)["visible"] is True
    with session_scope(tiny.deps.engine) as session:
        get_project(session, tiny.name).task = "multi_label"
    assert explain.score_choices(tiny.deps, tiny.name)["visible"] is False
    # a stale choice on a multi-label project explains the class logit, and the caption says so
    *_, info = explain.explain_image(tiny.deps, tiny.name, tiny.image_ids[0], "B-cos", "Input", "warm", False,
                                     explain.DECISION)
    assert "**warm** (class logit)" in info and "decision" not in info
    request = explain.target(tiny.deps, tiny.name, tiny.image_ids[0]).request
    with pytest.raises(ValueError, match="single-label"):
        tiny.deps.explanations.explain(request, "bcos", "input", 0, decision=True)
    assert catalog.get_project(tiny.deps.engine, tiny.name).multi_label


def _evaluate_both(tiny: TinyProject, before: dict, after: dict) -> int:
    """Test-split evaluations of the tiny checkpoint (before) and of a second checkpoint (after): its id."""
    path = save_checkpoint(tiny.deps.data_dir / "checkpoints", build_model("bcos_small", 2), classes=CLASSES)
    with session_scope(tiny.deps.engine) as session:
        second = register_checkpoint(session, project_id=get_project(session, tiny.name).id,
                                     path=f"checkpoints/{path.name}", sha256=file_sha256(path), arch="bcos_small").id
        record_evaluation(session, checkpoint_id=tiny.checkpoint_id, split="test", metrics=before, results=[])
        record_evaluation(session, checkpoint_id=second, split="test", metrics=after, results=[])
    return second


def test_compare_reports_the_class_logits_and_the_decisions_epg_each_labelled(tiny: TinyProject) -> None:
    # a fix that moved the decision's map reads as one: class-logit EPG 0.1 → 0.11, decision's 0.39 → 0.97
    after = _evaluate_both(tiny, {"accuracy": 0.5, "epg": 0.1, "epg_decision": 0.39},
                           {"accuracy": 0.5, "epg": 0.11, "epg_decision": 0.97})
    metrics, *_ = compare.compare_checkpoints(tiny.deps, tiny.name, tiny.checkpoint_id, after, "Largest EPG gain")
    table = metrics.set_index("metric")
    assert tuple(table.loc[CLASS_ROW]) == (0.1, 0.11, 0.01)
    assert tuple(table.loc[DECISION_ROW]) == (0.39, 0.97, 0.58)
    assert "epg" not in table.index and "epg_decision" not in table.index  # labelled, not raw keys


def test_compare_on_a_multi_label_project_has_no_decision_row(tiny: TinyProject) -> None:
    after = _evaluate_both(tiny, {"f1": 0.5, "epg": 0.2}, {"f1": 0.6, "epg": 0.3})
    with session_scope(tiny.deps.engine) as session:
        get_project(session, tiny.name).task = "multi_label"
    metrics, *_ = compare.compare_checkpoints(tiny.deps, tiny.name, tiny.checkpoint_id, after, "Largest EPG gain")
    table = metrics.set_index("metric")
    assert (table.loc[CLASS_ROW, "before"], table.loc[CLASS_ROW, "after"]) == (0.2, 0.3)
    assert DECISION_ROW not in table.index


def test_explanation_keys_of_the_class_and_the_decision_are_cached_apart(tiny: TinyProject) -> None:
    request = explain.target(tiny.deps, tiny.name, tiny.image_ids[1]).request
    plain = tiny.deps.explanations.explain(request, "ixg", "input", 1)
    decision = tiny.deps.explanations.explain(request, "ixg", "input", 1, decision=True)
    assert plain.key == dataclasses.replace(decision.key, contrast=False) and plain.map_path != decision.map_path
    # Input×Gradient is linear in the explained score: with two classes the decision is cool's map minus warm's
    warm = tiny.deps.explanations.explain(request, "ixg", "input", 0)
    np.testing.assert_allclose(decision.map(), plain.map() - warm.map(), atol=1e-5 * np.abs(plain.map()).max())
