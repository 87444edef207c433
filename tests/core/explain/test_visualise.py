"""Heatmap overlays and the B-cos colour explanation: dtypes, shapes, colours on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.explain import bcos_colour, colourise, overlay_heatmap


def test_signed_maps_use_a_diverging_map() -> None:
    rgb = colourise(np.array([[-1.0, 0.0, 1.0]]))
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 3, 3)
    negative, zero, positive = rgb[0]
    assert negative[2] > 200 and negative[0] < 10  # blue
    assert positive[0] > 200 and positive[2] < 10  # red
    assert (zero > 250).all()  # white


def test_unsigned_maps_saturate_at_the_percentile() -> None:
    a = torch.zeros(10, 10)
    a[0, 0] = 1000.0  # one extreme pixel must not wash out the rest
    a[5:, :] = 1.0
    rgb = colourise(a, signed=False, percentile=90)
    assert np.array_equal(rgb[9, 9], rgb[0, 0]) and not np.array_equal(rgb[9, 9], rgb[1, 1])


def test_overlay_resizes_the_map_and_blends() -> None:
    image = torch.rand(3, 32, 32)
    out = overlay_heatmap(image, torch.rand(4, 4), alpha=0.0)
    assert out.dtype == np.uint8 and out.shape == (32, 32, 3)
    np.testing.assert_array_equal(out, np.round(image.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    assert overlay_heatmap(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8)), alpha=1.0).any()
    with pytest.raises(ValueError, match="alpha"):
        overlay_heatmap(image, torch.rand(4, 4), alpha=2.0)


def test_bcos_colour_shows_the_colour_the_weights_align_with() -> None:
    weights = torch.zeros(6, 4, 4)
    weights[0] = 1.0  # weight on r only: a red pixel
    weights[4, :, 2:] = 1.0  # right half also weighs 1-g
    image = torch.full((3, 4, 4), 0.5)
    rgba = bcos_colour(weights, image, smooth=1)
    assert rgba.dtype == np.uint8 and rgba.shape == (4, 4, 4)
    np.testing.assert_array_equal(rgba[0, 0, :3], [255, 0, 0])
    np.testing.assert_array_equal(rgba[0, 3, :3], [255, 0, 0])  # g share is 0 / (0 + 1) on the right too
    # Opacity follows the weight norm (1 left, √2 right), scaled by its top percentile.
    assert (rgba[:, 2:, 3] == 255).all() and (rgba[:, :2, 3] == round(255 / 2**0.5)).all()


def test_bcos_colour_hides_negative_evidence() -> None:
    weights = torch.zeros(6, 4, 4)
    weights[0, :, :2] = 1.0
    weights[0, :, 2:] = -1.0  # negative contribution on the right
    rgba = bcos_colour(weights, torch.full((3, 4, 4), 0.5), smooth=1)
    assert (rgba[:, :2, 3] == 255).all() and (rgba[:, 2:, 3] == 0).all()
    with pytest.raises(ValueError, match="6, H, W"):
        bcos_colour(torch.zeros(3, 4, 4), torch.zeros(3, 4, 4))
