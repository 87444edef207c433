"""Box-swap counterfactuals: the boxed evidence on another image's surroundings, with its own label and boxes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from core.bcos import build_model
from core.data import GuidanceDataset, ImageRecord, collate_guidance
from core.train import TrainConfig, TrainEvent
from core.train.counterfactual import CounterfactualBank, append_rows
from core.train.fine_tune import fine_tune
from core.train.loop import TrainData


def _bank(records: list[ImageRecord], keys: list[int]) -> CounterfactualBank:
    return CounterfactualBank(records, keys, num_classes=2, image_size=64, multi_label=False,
                              device=torch.device("cpu"), seed=0)


def test_composite_keeps_the_boxed_pixels_and_label_and_takes_the_rest_from_another_image(
        tiny_data: TrainData) -> None:
    records = list(tiny_data.train[:12])
    bank = _bank(records, [r.key for r in records])
    originals = collate_guidance([GuidanceDataset(records, 2, 64)[i] for i in range(len(records))])
    pixels = originals["image"].mul(255).round()
    rows = bank.draw(40, torch.Generator().manual_seed(1))
    composites = rows["images"].mul(255).round()
    assert rows["annotated"].all() and (rows["group"] == -1).all()
    for n in range(40):
        # which original is the evidence: the one whose label, boxes and boxed pixels the composite carries
        matches = [i for i in range(len(records)) if torch.equal(rows["boxes"][n], originals["boxes"][i])
                   and int(rows["label"][n]) == records[i].labels[0]]
        assert matches, n
        source = matches[0]
        inside = bank.masks[source]
        assert torch.equal(composites[n][:, inside], pixels[source][:, inside])
        # outside the evidence's boxes, the pixels come from one other image of the bank (never itself)
        outside = ~inside
        donors = [i for i in range(len(records)) if i != source and torch.equal(
            composites[n][:, outside & ~bank.masks[i]], pixels[i][:, outside & ~bank.masks[i]])]
        assert donors, n
        assert not torch.equal(composites[n], pixels[source])


def test_fewer_than_two_annotated_images_give_no_bank(tiny_data: TrainData) -> None:
    records = list(tiny_data.train[:4])
    assert not _bank(records, [records[0].key])
    unboxed = [replace(r, boxes=(), box_labels=()) for r in records]
    assert not _bank(unboxed, [r.key for r in unboxed])
    assert _bank(records, [r.key for r in records[:2]]).size == 2
    # an image with a label but no box of it would lose its evidence while keeping the label: left out
    other = [replace(r, box_labels=tuple(1 - c for c in r.box_labels)) for r in records[:2]]
    assert not _bank([*other, *records[2:3]], [r.key for r in records[:3]])


def test_append_rows_pads_box_slots() -> None:
    batch = {"images": torch.zeros(2, 3, 4, 4), "boxes": torch.ones(2, 1, 4),
             "box_labels": torch.zeros(2, 1, dtype=torch.long), "box_valid": torch.ones(2, 1, dtype=torch.bool),
             "annotated": torch.zeros(2, dtype=torch.bool)}
    extra = {"images": torch.ones(1, 3, 4, 4), "boxes": torch.full((1, 3, 4), 2.0),
             "box_labels": torch.ones(1, 3, dtype=torch.long), "box_valid": torch.ones(1, 3, dtype=torch.bool),
             "annotated": torch.ones(1, dtype=torch.bool)}
    out = append_rows(batch, extra)
    assert out["boxes"].shape == (3, 3, 4) and out["images"].shape == (3, 3, 4, 4)
    assert out["box_valid"].sum(1).tolist() == [1, 1, 3]
    assert out["box_labels"][0].tolist() == [0, -1, -1] and out["annotated"].tolist() == [False, False, True]


def test_fine_tune_adds_composites_as_annotated_rows(tiny_data: TrainData, tmp_path: Path) -> None:
    plain, mixed = _steps(tiny_data, tmp_path, 0.0), _steps(tiny_data, tmp_path, 1.0)
    # every composite is an annotated image: 16 more per step than the batch's own boxed images
    assert [e.losses["annotated"] - 16 for e in mixed] == [e.losses["annotated"] for e in plain]
    assert all(np.isfinite(e.losses["loss"]) for e in mixed)


def test_lambda_zero_trains_without_boxes_so_without_composites(tiny_data: TrainData, tmp_path: Path) -> None:
    # `train --lam 0` is the plain route (a first model, the λ = 0 control): the default counterfactuals stay off
    plain, asked = _steps(tiny_data, tmp_path, 0.0, lam=0.0), _steps(tiny_data, tmp_path, 1.0, lam=0.0)
    assert [e.losses["annotated"] for e in asked] == [e.losses["annotated"] for e in plain]
    assert [e.losses["loss"] for e in asked] == [e.losses["loss"] for e in plain]


def _steps(data: TrainData, tmp_path: Path, counterfactuals: float, lam: float = 1.0) -> list[TrainEvent]:
    """The step events of a 3-step fine-tune of a new bcos_small (batch 16, a quarter of the boxes used)."""
    events: list[TrainEvent] = []
    torch.manual_seed(0)
    cfg = TrainConfig(lam=lam, epochs=1, batch_size=16, device="cpu", layer="input", annotated_fraction=0.25,
                      counterfactuals=counterfactuals, max_steps_per_epoch=3)
    fine_tune(build_model("bcos_small", 2), data, cfg, out_dir=tmp_path / f"{counterfactuals}-{lam}",
              on_event=events.append)
    return [e for e in events if e.kind == "step"]
