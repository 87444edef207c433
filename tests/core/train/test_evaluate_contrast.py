"""`evaluate(..., contrast=True)`: EPG of the decision's map on single-label data (docs/science.md §10)."""

from __future__ import annotations

import torch

from core.bcos import build_model
from core.explain import EXPLAINERS
from core.guidance import boxes_to_masks
from core.metrics import energy_pointing_game
from core.train.evaluate import evaluate
from core.train.loop import TrainData, build_loader, to_device


def _batches(data: TrainData) -> list[dict]:
    return [to_device(b, torch.device("cpu")) for b in build_loader(data.val, data, 16, shuffle=False, seed=0)]


def test_contrast_epg_is_the_epg_of_logit_t_minus_the_other_logit(tiny_data: TrainData) -> None:
    torch.manual_seed(0)
    model = build_model("bcos_small", 2).eval()
    batches = _batches(tiny_data)
    kwargs = {"multi_label": False, "group_names": list(tiny_data.group_names)}
    plain = evaluate(model, batches, **kwargs).metrics
    decision = evaluate(model, batches, contrast=True, **kwargs).metrics
    # by hand: with two classes the decision is logit_t − logit_other, and B-cos maps are linear in the logit
    with EXPLAINERS["bcos"](model, layer="input") as explainer:
        values = []
        for batch in batches:
            label = batch["label"]
            own = explainer.attribute_detached(batch["images"], label).maps
            other = explainer.attribute_detached(batch["images"], 1 - label).maps
            valid = batch["box_valid"] & (batch["box_labels"] == label[:, None])
            masks = boxes_to_masks(batch["boxes"], valid, 64, 64)
            values.append(energy_pointing_game(own - other, masks)[valid.any(1)])
    expected = float(torch.cat(values).mean())
    assert abs(decision["epg"] - expected) < 1e-4, (decision["epg"], expected)
    assert abs(decision["epg"] - plain["epg"]) > 1e-3  # a different map: not the class logit's EPG again
    assert decision["accuracy"] == plain["accuracy"]  # the decisions themselves are the same


def test_contrast_is_ignored_for_multi_label_data(tiny_data: TrainData) -> None:
    torch.manual_seed(0)
    model = build_model("bcos_small", 2).eval()
    data = TrainData(train=tiny_data.train, val=tiny_data.val, classes=tiny_data.classes, image_size=64,
                     multi_label=True)
    batches = _batches(data)
    assert evaluate(model, batches, multi_label=True, contrast=True).metrics["epg"] == \
        evaluate(model, batches, multi_label=True).metrics["epg"]


def test_decision_adds_the_decisions_epg_beside_the_class_logits(tiny_data: TrainData) -> None:
    # one pass gives both: `epg` stays the class logit's, `epg_decision` is what `contrast=True` measures
    torch.manual_seed(0)
    model = build_model("bcos_small", 2).eval()
    batches = _batches(tiny_data)
    kwargs = {"multi_label": False, "group_names": list(tiny_data.group_names)}
    both = evaluate(model, batches, decision=True, **kwargs).metrics
    assert both["epg"] == evaluate(model, batches, **kwargs).metrics["epg"]
    assert abs(both["epg_decision"] - evaluate(model, batches, contrast=True, **kwargs).metrics["epg"]) < 1e-6
    assert abs(both["epg_decision"] - both["epg"]) > 1e-3
    assert "epg_decision" not in evaluate(model, batches, **kwargs).metrics


def test_decision_is_not_measured_on_multi_label_data(tiny_data: TrainData) -> None:
    torch.manual_seed(0)
    model = build_model("bcos_small", 2).eval()
    data = TrainData(train=tiny_data.train, val=tiny_data.val, classes=tiny_data.classes, image_size=64,
                     multi_label=True)
    assert "epg_decision" not in evaluate(model, _batches(data), multi_label=True, decision=True).metrics
