"""Localisation losses: hand-computed 4×4 values, a per-image loop reference, properties, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from core.guidance import LOSSES, defined_images, energy_loss, l1_loss, ppce_loss, rrr_loss
from core.metrics import energy_pointing_game

# Hand case: mask = top-left 2×2; A⁺ sums to 8, 4 of it inside; max |A| = 4.
MAP = torch.tensor([[2.0, 1, 0, 0], [1, 0, 0, 0], [0, 0, -1, 0], [0, 0, 0, 4]])
MASK = torch.zeros(4, 4, dtype=torch.bool)
MASK[:2, :2] = True


def test_energy_hand_case() -> None:
    assert energy_loss(MAP[None], MASK[None]).item() == pytest.approx(0.5)


def test_l1_hand_case() -> None:
    # normalised A⁺: .5 .25 .25 0 inside (|·-1| sums to 3), 1 outside at (3, 3): 4 / 16
    assert l1_loss(MAP[None], MASK[None]).item() == pytest.approx(0.25)


def test_ppce_hand_case() -> None:
    # -log of .5, .25, .25 and the clamped log(0) = -100, averaged over the 4 mask pixels
    expected = (math.log(2) + 2 * math.log(4) + 100) / 4
    assert ppce_loss(MAP[None], MASK[None]).item() == pytest.approx(expected, rel=1e-6)


def test_rrr_hand_case() -> None:
    # outside the mask: -1/4 and 4/4 -> 1/16 + 1
    assert rrr_loss(MAP[None], MASK[None]).item() == pytest.approx(1.0625)


def test_energy_upsamples_the_raw_map_bilinearly() -> None:
    low = torch.tensor([[[1.0, 0], [0, 0]]])  # upsampled rows/cols weights 1, .75, .25, 0
    # inside = (1 + .75)², total = (1 + .75 + .25)² = 4
    assert energy_loss(low, MASK[None]).item() == pytest.approx(1 - 3.0625 / 4)


def test_energy_without_positive_evidence_uses_reference_fallback() -> None:
    tiny = torch.zeros(1, 4, 4)
    tiny[0, 0, 0] = 5e-8  # Σ A⁺ < 1e-7, all of it inside
    assert energy_loss(tiny, MASK[None]).item() == pytest.approx(1 - 5e-8)
    assert energy_loss(-torch.ones(1, 4, 4), MASK[None]).item() == 1.0


def test_empty_masks_and_zero_maps_give_no_nan() -> None:
    maps = torch.stack((torch.zeros(4, 4), MAP, torch.zeros(4, 4)))
    masks = torch.stack((MASK, torch.zeros(4, 4, dtype=torch.bool), torch.zeros(4, 4, dtype=torch.bool)))
    for name, loss in LOSSES.items():
        values = loss(maps, masks)
        assert torch.isfinite(values).all(), name
    assert ppce_loss(maps, masks)[1:].tolist() == [0.0, 0.0]
    assert defined_images(masks).tolist() == [True, False, False]


def test_gradients_finite_on_degenerate_inputs() -> None:
    maps = torch.stack((torch.zeros(2, 2), -torch.ones(2, 2), torch.rand(2, 2))).requires_grad_()
    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[0, :2, :2] = True
    for name, loss in LOSSES.items():
        (grad,) = torch.autograd.grad(loss(maps, masks).sum(), maps)
        assert torch.isfinite(grad).all(), name


def loop_loss(name: str, attributions: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Plain per-image implementation of docs/science.md §3–4, one image at a time."""
    values = []
    for a, m in zip(attributions.double(), masks):
        m = m.double()

        def up(x: torch.Tensor, m: torch.Tensor = m) -> torch.Tensor:
            return F.interpolate(x[None, None], size=m.shape, mode="bilinear", align_corners=False)[0, 0]

        if name == "energy":
            p = up(a).clamp(min=0)
            total, inside = float(p.sum()), float((p * m).sum())
            values.append(1 - inside / total if total >= 1e-7 else 1 - inside)
            continue
        x = a.clamp(min=0) if name in ("l1", "ppce") else a
        peak = float(x.abs().max())
        x = up(x / peak if peak > 0 else x)
        if name == "l1":
            values.append(float((x - m).abs().mean()))
        elif name == "ppce":
            inside = [max(math.log(float(v)), -100.0) if v > 0 else -100.0 for v in x[m.bool()]]
            values.append(-sum(inside) / len(inside) if inside else 0.0)
        else:
            values.append(float((x[~m.bool()] ** 2).sum()))
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("low_res", [(8, 8), (4, 2)])
def test_matches_per_image_loop(name: str, low_res: tuple[int, int]) -> None:
    gen = torch.Generator().manual_seed(1)
    maps = torch.randn(6, *low_res, generator=gen, dtype=torch.float64)
    maps[0] = 0  # all-zero map
    masks = torch.rand(6, 8, 8, generator=gen) > 0.6
    masks[1] = False  # empty mask
    got = LOSSES[name](maps, masks)
    assert torch.allclose(got, loop_loss(name, maps, masks), atol=1e-6, rtol=1e-6)


maps_strategy = st.integers(min_value=0, max_value=2**31 - 1).map(
    lambda seed: torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(seed)) * 3
)
masks_strategy = st.lists(st.booleans(), min_size=48, max_size=48).map(lambda bits: torch.tensor(bits).view(3, 4, 4))


@settings(max_examples=60, deadline=None)
@given(maps=maps_strategy, masks=masks_strategy, sparsity=st.floats(min_value=0, max_value=1))
def test_loss_ranges_and_energy_is_one_minus_epg(maps: torch.Tensor, masks: torch.Tensor, sparsity: float) -> None:
    maps = torch.where(torch.rand_like(maps) < sparsity, -maps.abs(), maps)  # sometimes no positive evidence
    energy, epg = energy_loss(maps, masks), energy_pointing_game(maps, masks)
    assert ((energy >= 0) & (energy <= 1 + 1e-6)).all()
    defined = maps.clamp(min=0).sum((1, 2)) >= 1e-7
    assert torch.allclose(energy[defined], 1 - epg[defined], atol=1e-6)
    assert ((l1_loss(maps, masks) >= 0) & (l1_loss(maps, masks) <= 1)).all()
    ppce = ppce_loss(maps, masks)
    assert ((ppce >= 0) & (ppce <= 100)).all()
    rrr = rrr_loss(maps, masks)
    assert ((rrr >= 0) & (rrr <= 16 + 1e-5)).all()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradcheck_double(name: str) -> None:
    gen = torch.Generator().manual_seed(2)
    # Away from kinks: distinct magnitudes, strictly positive for the losses that clamp or take logs.
    maps = torch.rand(2, 3, 3, generator=gen, dtype=torch.float64) + 0.1
    if name in ("energy", "rrr"):
        maps = maps * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    masks = torch.zeros(2, 6, 6, dtype=torch.bool)
    masks[:, 1:4, 2:5] = True
    maps.requires_grad_()
    assert torch.autograd.gradcheck(lambda a: LOSSES[name](a, masks), (maps,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_trains_through_a_create_graph_explanation(name: str) -> None:
    """The losses sit on top of an explanation built with create_graph=True (guided training)."""
    gen = torch.Generator().manual_seed(3)
    weight = torch.randn(1, 3, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    images = torch.rand(2, 3, 6, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    logits = F.conv2d(images, weight, padding=1).square().mean((1, 2, 3))
    (grads,) = torch.autograd.grad(logits.sum(), images, create_graph=True)
    attributions = (grads * images).sum(1)  # (B, H, W) input × gradient
    masks = torch.zeros(2, 6, 6, dtype=torch.bool)
    masks[:, :3, :3] = True
    LOSSES[name](attributions, masks).sum().backward()
    assert weight.grad is not None and torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0


def test_shape_errors_are_actionable() -> None:
    with pytest.raises(ValueError, match="channel"):
        energy_loss(torch.zeros(1, 1, 4, 4), MASK[None])
    with pytest.raises(ValueError, match="batch sizes"):
        l1_loss(torch.zeros(2, 4, 4), MASK[None])
