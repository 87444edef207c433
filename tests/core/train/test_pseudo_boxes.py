"""Pseudo-boxes from the model's own evidence (core/train/pseudo_boxes.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from core.bcos import build_model
from core.explain.evidence import evidence_box
from core.train import TrainConfig
from core.train.fine_tune import fine_tune
from core.train.loop import TrainData, build_loader
from core.train.pseudo_boxes import propose_pseudo_boxes, unboxed_loader


def test_the_box_holds_the_strongest_component_and_says_its_share() -> None:
    amap = np.zeros((64, 64), dtype=np.float32)
    amap[10:20, 30:44] = 1.0  # the object: 140 units of evidence
    amap[50:53, 2:5] = 0.4  # a faint second blob, below half the peak after blurring
    amap[40:45, 40:45] = -3.0  # negative evidence never counts
    (x0, y0, x1, y1), share = evidence_box(amap)
    assert 28 <= x0 <= 31 and 43 <= x1 <= 46 and 8 <= y0 <= 11 and 19 <= y1 <= 22
    assert 0.9 < share <= 1.0
    assert evidence_box(-np.ones((8, 8))) is None


def test_proposals_box_only_unboxed_images_and_never_touch_human_boxes(tiny_data: TrainData) -> None:
    records = [r if i % 2 else replace(r, boxes=(), box_labels=())
               for i, r in enumerate(tiny_data.train)]
    data = TrainData(train=records, val=tiny_data.val, classes=tiny_data.classes, image_size=64, multi_label=False)
    loader = unboxed_loader(build_loader(records, data, 16, shuffle=False, seed=0), records)
    torch.manual_seed(0)
    out, shares = propose_pseudo_boxes(build_model("bcos_small", 2), loader, records, attribution="bcos",
                                       contrast=True, device=torch.device("cpu"))
    assert [r.boxes for r in out if r.key not in shares] == [r.boxes for r in records if r.key not in shares]
    assert all(not records[i].boxes for i, r in enumerate(records) if r.key in shares)  # only unboxed ones
    for r in out:
        if r.key in shares:
            (x0, y0, x1, y1), = r.boxes
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64 and shares[r.key] >= 0.6
            assert (x1 - x0) * (y1 - y0) <= 0.5 * 64 * 64 and r.box_labels == (r.labels[0],)


def test_fine_tune_records_its_pseudo_boxes(tiny_data: TrainData, tmp_path: Path) -> None:
    half = [r if i % 4 == 0 else replace(r, boxes=(), box_labels=())
            for i, r in enumerate(tiny_data.train)]
    data = TrainData(train=half, val=tiny_data.val, classes=tiny_data.classes, image_size=64, multi_label=False,
                     group_names=tiny_data.group_names)
    cfg = TrainConfig(epochs=2, batch_size=16, device="cpu", layer="input", max_steps_per_epoch=2, schedule="fixed",
                      pseudo_boxes=1e-6)  # any EPG triggers a pass
    torch.manual_seed(0)
    result = fine_tune(build_model("bcos_small", 2), data, cfg, out_dir=tmp_path)
    info = result.pseudo_boxes
    assert info is not None and info["epoch"] == 2 and 0 < info["proposed"] <= info["of"] == 72
