"""Metrics: hand-computed values, per-image loop references, properties, Pareto selection, meters."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from core.metrics import (
    ClassificationMeter,
    LocalisationMeter,
    accuracy,
    box_iou,
    energy_pointing_game,
    group_accuracy,
    group_counts,
    multilabel_counts,
    multilabel_f1,
    pareto_front,
    precision_recall_f1,
    worst_group_accuracy,
)

MAP = torch.tensor([[2.0, 1, 0, 0], [1, 0, 0, 0], [0, 0, -1, 0], [0, 0, 0, 4]])
MASK = torch.zeros(4, 4, dtype=torch.bool)
MASK[:2, :2] = True


def test_epg_and_iou_hand_case() -> None:
    assert energy_pointing_game(MAP[None], MASK[None]).item() == pytest.approx(0.5)
    # min-max normalised A⁺ ≥ .5 at (0, 0) and (3, 3): intersection 1, union 5
    assert box_iou(MAP[None], MASK[None]).item() == pytest.approx(0.2)
    assert box_iou(MAP[None], MASK[None], threshold=0.2).item() == pytest.approx(3 / 4 * 4 / 5)


def test_epg_and_iou_degenerate_cases() -> None:
    empty = torch.zeros(1, 4, 4, dtype=torch.bool)
    assert energy_pointing_game(-torch.ones(1, 4, 4), MASK[None]).item() == 0.0
    assert box_iou(torch.zeros(1, 4, 4), empty).item() == 0.0  # empty union
    assert box_iou(torch.full((1, 4, 4), 2.0), MASK[None]).item() == pytest.approx(0.25)  # flat map: all selected
    assert box_iou(torch.zeros(1, 4, 4), MASK[None]).item() == 0.0


def loop_epg_iou(maps: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5) -> tuple[list, list]:
    """Plain per-image EPG and IoU, one image at a time in float64."""
    epgs, ious = [], []
    for a, m in zip(maps.double(), masks):
        p = F.interpolate(a[None, None], size=m.shape, mode="bilinear", align_corners=False)[0, 0].clamp(min=0)
        total = float(p.sum())
        epgs.append(float(p[m].sum()) / total if total >= 1e-7 else 0.0)
        lo, hi = float(p.min()), float(p.max())
        if hi - lo >= 1e-7:
            n = (p - lo) / (hi - lo)
        else:
            n = p / hi if hi > 0 else p * 0
        region = n >= threshold
        union = int((region | m).sum())
        ious.append(int((region & m).sum()) / union if union else 0.0)
    return epgs, ious


@pytest.mark.parametrize("low_res", [(8, 8), (2, 4)])
def test_epg_iou_match_per_image_loop(low_res: tuple[int, int]) -> None:
    gen = torch.Generator().manual_seed(0)
    maps = torch.randn(7, *low_res, generator=gen, dtype=torch.float64)
    maps[0], maps[1] = 0, -1
    masks = torch.rand(7, 8, 8, generator=gen) > 0.5
    masks[2] = False
    epgs, ious = loop_epg_iou(maps, masks)
    assert torch.allclose(energy_pointing_game(maps, masks), torch.tensor(epgs, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(box_iou(maps, masks), torch.tensor(ious, dtype=torch.float64), atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), density=st.floats(0, 1), threshold=st.floats(0, 1))
def test_epg_and_iou_in_unit_interval(seed: int, density: float, threshold: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    maps = torch.randn(4, 3, 5, generator=gen) * 10 ** torch.randint(-9, 3, (4, 1, 1), generator=gen)
    masks = torch.rand(4, 6, 10, generator=gen) < density
    for values in (energy_pointing_game(maps, masks), box_iou(maps, masks, threshold)):
        assert torch.isfinite(values).all() and ((values >= 0) & (values <= 1 + 1e-6)).all()


def test_multilabel_f1_hand_case() -> None:
    logits = torch.tensor([[1.0, -1.0, 0.0], [-2.0, 3.0, -0.5]])  # logit 0 counts as predicted
    labels = torch.tensor([[1, 0, 0], [1, 1, 0]])
    assert multilabel_counts(logits, labels).tolist() == [2, 1, 1]
    precision, recall, f1 = precision_recall_f1(multilabel_counts(logits, labels)).tolist()
    assert (precision, recall, f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert multilabel_f1(-torch.ones(2, 3), torch.zeros(2, 3)).item() == 0.0


def test_accuracy_and_groups_hand_case() -> None:
    logits = torch.tensor([[2.0, 1], [0, 1], [3, 0], [0, 5], [1, 0]])
    labels = torch.tensor([0, 0, 0, 1, 1])  # correct: T F T T F
    groups = torch.tensor([0, 0, 1, 1, 2])
    assert accuracy(logits, labels).item() == pytest.approx(0.6)
    counts = group_counts(logits, labels, groups, num_groups=4)
    assert counts.tolist() == [[1, 2, 0, 0], [2, 2, 1, 0]]
    per_group = group_accuracy(counts)
    assert per_group[:3].tolist() == [0.5, 1.0, 0.0] and per_group[3].isnan()
    assert worst_group_accuracy(counts).item() == 0.0


def test_meters_stream_equal_one_shot() -> None:
    gen = torch.Generator().manual_seed(4)
    logits, labels = torch.randn(10, 5, generator=gen), torch.rand(10, 5, generator=gen) > 0.5
    meter = ClassificationMeter()
    meter.update(logits[:4], labels[:4])
    meter.update(logits[4:], labels[4:])
    assert meter.compute()["f1"] == pytest.approx(multilabel_f1(logits, labels).item())
    single, groups = labels.long().argmax(1), torch.arange(10) % 3
    grouped = ClassificationMeter(num_groups=3)
    grouped.update(logits[:6], single[:6], groups[:6])
    grouped.update(logits[6:], single[6:], groups[6:])
    result = grouped.compute()
    assert result["accuracy"] == pytest.approx(accuracy(logits, single).item())
    worst = worst_group_accuracy(group_counts(logits, single, groups, 3)).item()
    assert result["worst_group_accuracy"] == pytest.approx(worst)
    maps, masks = torch.randn(6, 2, 2, generator=gen), torch.rand(6, 4, 4, generator=gen) > 0.5
    localisation = LocalisationMeter()
    localisation.update(maps[:2], masks[:2])
    localisation.update(maps[2:], masks[2:])
    assert localisation.compute()["epg"] == pytest.approx(energy_pointing_game(maps, masks).mean().item())
    assert localisation.compute()["iou"] == pytest.approx(box_iou(maps, masks).mean().item())
    assert LocalisationMeter().compute()["pairs"] == 0


def test_grouped_meter_requires_groups() -> None:
    with pytest.raises(ValueError, match="groups"):
        ClassificationMeter(num_groups=2).update(torch.zeros(2, 2), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([], []),
        ([(0.8, 0.5, 0.3), (0.7, 0.6, 0.3), (0.6, 0.4, 0.2)], [0, 1]),
        ([(0.1, 0.1, 0.1), (0.2, 0.2, 0.2)], [1]),  # a later checkpoint dominates an earlier one
        ([(0.5, 0.5, 0.5), (0.5, 0.5, 0.5)], [0]),  # exact tie: earliest survives
        ([(0.801, 0.5, 0.3), (0.799, 0.5, 0.3)], [0]),  # both round to 0.800: a tie
        ([(0.5, 0.5, 0.5), (0.5024, 0.5, 0.5)], [0]),  # 100.48 bins rounds to 100
        ([(0.5, 0.5, 0.5), (0.5026, 0.5, 0.5)], [1]),  # 100.52 bins rounds to 101: dominates
        ([(0.5, 0.5, 0.5), (0.5, 0.5, 0.5), (0.6, 0.6, 0.6)], [2]),
        ([(0.7, 0.2, 0.2), (0.2, 0.7, 0.2), (0.2, 0.2, 0.7), (0.7, 0.2, 0.2)], [0, 1, 2]),
    ],
)
def test_pareto_front(points: list[tuple[float, ...]], expected: list[int]) -> None:
    assert pareto_front(points) == expected


def test_pareto_front_bins_halves_up_and_validates() -> None:
    assert pareto_front([(0.0125, 0.0), (0.0149, 0.0)]) == [0]  # both land in bin 3
    assert pareto_front([(0.5, 0.5), (0.51, 0.5)], bin_width=0.1) == [0]
    with pytest.raises(ValueError, match="bin_width"):
        pareto_front([(0.5,)], bin_width=0)
