"""Guided fine-tuning end to end on a tiny task: it learns, it localises, it cancels cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.bcos import build_model
from core.train import TrainConfig, TrainEvent, TrainingCancelled, load_checkpoint
from core.train.fine_tune import fine_tune
from core.train.loop import TrainData


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("bcos_small", num_classes=2)


def test_guided_fine_tune_lowers_loss_and_raises_epg(tiny_data: TrainData, tmp_path: Path) -> None:
    events: list[TrainEvent] = []
    cfg = TrainConfig(lam=1.0, lr=2e-3, epochs=3, batch_size=16, seed=0, device="cpu", layer="input")
    result = fine_tune(_model(), tiny_data, cfg, out_dir=tmp_path, on_event=events.append)
    steps = [e for e in events if e.kind == "step"]
    first = sum(e.losses["localisation"] for e in steps[:6]) / 6
    last = sum(e.losses["localisation"] for e in steps[-6:]) / 6
    assert last < first, (first, last)
    assert result.history[-1]["epg"] > result.base_metrics["epg"] + 0.1
    assert events[0].kind == "start" and events[-1].kind == "done" and events[-1].progress == 1.0
    # only the Pareto front stays on disk, and every kept file loads with its metadata
    kept = sorted(tmp_path.glob("*.pt"))
    assert kept and {Path(c["path"]) for c in result.checkpoints} == set(kept)
    loaded = load_checkpoint(kept[0], expected_classes=list(tiny_data.classes))
    assert loaded.config["lam"] == 1.0 and "epg" in loaded.metrics


def test_plain_training_with_zero_lambda_never_explains(tiny_data: TrainData, tmp_path: Path) -> None:
    events: list[TrainEvent] = []
    cfg = TrainConfig(lam=0.0, epochs=1, batch_size=32, device="cpu")
    fine_tune(_model(), tiny_data, cfg, out_dir=tmp_path, on_event=events.append)
    assert all(e.losses["localisation"] == 0.0 for e in events if e.kind == "step")


def test_cancel_leaves_finished_checkpoints_and_no_partial_file(tiny_data: TrainData, tmp_path: Path) -> None:
    events: list[TrainEvent] = []

    def should_stop() -> bool:  # cancel in the second epoch, after one checkpoint exists
        return any(e.kind == "eval" for e in events) and sum(e.kind == "step" for e in events) >= 8

    cfg = TrainConfig(lam=1.0, epochs=3, batch_size=16, device="cpu", layer="input")
    with pytest.raises(TrainingCancelled):
        fine_tune(_model(), tiny_data, cfg, out_dir=tmp_path, on_event=events.append, should_stop=should_stop)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".pt" and not files[0].name.startswith(".tmp")
    load_checkpoint(files[0])


def test_contrast_target_and_mid_layer_train(tiny_data: TrainData, tmp_path: Path) -> None:
    cfg = TrainConfig(lam=1.0, epochs=1, batch_size=32, layer="mid2", target="contrast", loss="l1", device="cpu",
                      max_steps_per_epoch=2)
    result = fine_tune(_model(), tiny_data, cfg, out_dir=tmp_path)
    assert len(result.history) == 1 and 0.0 <= result.history[0]["epg"] <= 1.0



def test_a_run_no_better_than_its_start_keeps_the_start(tiny_data: TrainData, tmp_path: Path) -> None:
    # a rate so small the one step changes no decision and no map: the epoch ties with its start
    still = TrainConfig(lam=1.0, lr=1e-12, epochs=1, max_steps_per_epoch=1, batch_size=16, schedule="fixed",
                        device="cpu", layer="input")
    events: list[TrainEvent] = []
    result = fine_tune(_model(), tiny_data, still, out_dir=tmp_path / "kept", on_event=events.append)
    assert result.history[0]["accuracy"] == result.base_metrics["accuracy"]
    assert not result.improved and result.best is None and result.kept_epoch == 0  # the start wins the tie
    assert "no epoch beat the starting model" in events[-1].message and events[-1].checkpoint is None
    anyway = fine_tune(_model(), tiny_data, TrainConfig(**{**still.to_dict(), "keep_start": False}),
                       out_dir=tmp_path / "anyway")
    assert anyway.improved and anyway.kept_epoch == 1  # keep_start off: the best trained epoch, better or not
