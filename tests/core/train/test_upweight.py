"""Up-weighting the starting model's training errors (JTT, core/train/upweight.py)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from core.bcos import build_model
from core.train import TrainConfig, TrainEvent
from core.train.fine_tune import fine_tune
from core.train.loop import TrainData, build_loader
from core.train.upweight import ErrorSet, error_sampler, training_errors


class _Constant(nn.Module):
    """Answers class `answer` on every image (its logits ignore the pixels)."""

    def __init__(self, answer: int, classes: int = 2) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.nn.functional.one_hot(torch.tensor(answer), classes).float() * 5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(images.shape[0], -1)


def test_the_error_set_is_exactly_the_images_the_model_gets_wrong(tiny_data: TrainData) -> None:
    loader = build_loader(tiny_data.train, tiny_data, 16, shuffle=False, seed=0)
    model = _Constant(answer=0).train()
    errors = training_errors(model, loader, multi_label=False, device=torch.device("cpu"))
    assert errors.keys == {r.key for r in tiny_data.train if r.labels[0] != 0}
    assert errors.images == len(tiny_data.train) and 0 < errors.share < 1
    assert model.training  # its mode is given back


def test_the_sampler_draws_the_error_set_factor_times_as_often(tiny_data: TrainData) -> None:
    records = list(tiny_data.train)
    errors = ErrorSet(keys=frozenset(r.key for r in records[:4]), images=len(records))  # 4 of 96
    sampler = error_sampler(records, errors, factor=23.0, seed=0)  # 4·23 = 92 ≈ the other 92 images' weight
    assert sampler is not None and sampler.num_samples == len(records)
    draws = torch.tensor([i for _ in range(200) for i in sampler])
    share = float((draws < 4).float().mean())
    assert 0.45 < share < 0.55  # unweighted it would be 4/96 ≈ 0.04
    assert error_sampler(records, errors, factor=1.0, seed=0) is None
    assert error_sampler(records, ErrorSet(frozenset(), len(records)), factor=23.0, seed=0) is None


def test_fine_tune_records_what_it_upweighted_and_leaves_a_new_model_alone(tiny_data: TrainData,
                                                                         tmp_path: Path) -> None:
    cfg = TrainConfig(lam=0.0, epochs=1, batch_size=16, device="cpu", layer="input", max_steps_per_epoch=2,
                      schedule="fixed", upweight_errors=10.0)
    torch.manual_seed(0)
    events: list[TrainEvent] = []
    result = fine_tune(build_model("bcos_small", 2), tiny_data, cfg, out_dir=tmp_path / "a", on_event=events.append)
    assert result.upweighted is not None and result.upweighted["factor"] == 10.0
    assert result.upweighted["of"] == len(tiny_data.train) and 0 < result.upweighted["images"] < len(tiny_data.train)
    start = next(e for e in events if e.kind == "start")
    assert f"{result.upweighted['images']} the starting model gets wrong drawn 10× as often" in start.message
    fresh = fine_tune(build_model("bcos_small", 2), tiny_data, cfg, out_dir=tmp_path / "b", fresh=True)
    assert fresh.upweighted is None  # a new model's errors are noise
