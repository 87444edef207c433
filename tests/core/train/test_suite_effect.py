"""The shortcut suite in miniature (issue 13): on every benchmark, the one click beats the no-box control.

Reduced to fit the test run (`python bench/suite.py` is the full version): 320 training images (boxes on a quarter of
them, half for multilabel), a shortcut baseline made by the product's plain route (`model new` + `train --lam 0`:
a new bcos_small, no boxes, norm statistics learning, 3 epochs), then the one click — `TrainConfig()`'s adaptive
schedule from lr 1e-3 with box-swap counterfactuals — capped at 3 epochs (4 for multilabel) with no time budget, so
the run does not depend on the machine's load, at batch 16 so that 320 images still give 20 steps an epoch; and the
control that uses no boxes (λ = 0, no counterfactuals) replaying the same learning rates. Measured on a balanced
test split (the cue lies on half the images): the one click must beat the control on worst-group accuracy, and on
EPG at the input by at least 0.05.

Measured 2026-12-07 on 2 vCPUs (AMD EPYC): quiet, 30–36 s per single-label benchmark and 39 s for multilabel
(2 min 18 s); inside the full CI run 36–37 s and 50 s, 2 min 39 s in all (the issue's limit: 3 minutes).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.bcos import build_model
from core.data.shortcuts import BENCHMARKS, ShortcutConfig, generate_shortcut_dataset, shortcut_records
from core.train import TrainConfig
from core.train.checkpoint import load_checkpoint
from core.train.evaluate import evaluate
from core.train.fine_tune import fine_tune
from core.train.loop import TrainData, build_loader, to_device

SMALL = ShortcutConfig(seed=0, train_size=320, val_size=80, test_size=120, imported_fraction=0.25)
SIZES = {"multilabel": ShortcutConfig(seed=0, train_size=320, val_size=160, test_size=120, imported_fraction=0.5)}
BASELINE_EPOCHS = 3
EPOCHS = {"multilabel": 4}  # the one click's cap here (3 unless named): three textures take longer to learn
BATCH = 16  # 20 steps an epoch on 320 images: small steps, as many as the full suite's 2,000 images at batch 64


def _data(name: str, directory: Path) -> TrainData:
    bench = BENCHMARKS[name]
    return TrainData(train=shortcut_records(name, directory, "train"), val=shortcut_records(name, directory, "val"),
                     classes=list(bench.classes), image_size=64, multi_label=bench.multi_label,
                     group_names=list(bench.groups))


def _metrics(model: torch.nn.Module, data: TrainData, records: list) -> dict:
    loader = build_loader(records, data, 128, shuffle=False, seed=0)
    return evaluate(model, (to_device(b, torch.device("cpu")) for b in loader), multi_label=data.multi_label,
                    group_names=list(data.group_names)).metrics


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_guidance_beats_the_control_on_worst_group_and_epg(name: str, tmp_path: Path) -> None:
    generate_shortcut_dataset(name, tmp_path / "data", SIZES.get(name, SMALL))
    data = _data(name, tmp_path / "data")
    test = shortcut_records(name, tmp_path / "data", "test")
    torch.manual_seed(0)
    baseline = build_model("bcos_small", len(data.classes))
    plain = TrainConfig(lam=0.0, lr=1e-3, epochs=BASELINE_EPOCHS, schedule="fixed", batch_size=BATCH,
                        freeze_norm="no", device="cpu")
    fine_tune(baseline, data, plain, out_dir=tmp_path / "baseline")
    torch.save(baseline.state_dict(), tmp_path / "baseline.pt")

    def run(lrs: list[float] | None = None, **overrides: float) -> tuple[dict, list[float]]:
        model = build_model("bcos_small", len(data.classes))
        model.load_state_dict(torch.load(tmp_path / "baseline.pt", weights_only=True))
        cfg = TrainConfig(device="cpu", epochs=EPOCHS.get(name, 3), budget_s=0.0, batch_size=BATCH)  # the one click
        cfg = cfg.with_overrides(**overrides)
        result = fine_tune(model, data, cfg, out_dir=tmp_path / f"run-{len(overrides)}", lr_plan=lrs)
        if result.best is None:  # no epoch beat the baseline: the run keeps it (the starting model competes)
            model.load_state_dict(torch.load(tmp_path / "baseline.pt", weights_only=True))
            return _metrics(model, data, test), [h["lr"] for h in result.history]
        chosen = load_checkpoint(Path(result.best["path"])).model
        return _metrics(chosen, data, test), [h["lr"] for h in result.history]

    before = _metrics(baseline, data, test)
    assert before["worst_group_accuracy"] <= 0.3, ("the baseline should be a shortcut model", before)
    guided, schedule = run()
    control, _ = run(schedule, lam=0.0, counterfactuals=0.0)  # no boxes at all, the same learning rates
    worst = (before["worst_group_accuracy"], guided["worst_group_accuracy"], control["worst_group_accuracy"])
    epg = (before["epg"], guided["epg"], control["epg"])
    assert guided["worst_group_accuracy"] > control["worst_group_accuracy"], (name, worst, epg, schedule)
    assert guided["epg"] >= control["epg"] + 0.05, (name, worst, epg, schedule)
