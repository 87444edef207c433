"""Heatmap overlays and the B-cos colour explanation: dtypes, shapes, colours on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.explain import bcos_colour, colourise, overlay_heatmap
from core.explain.visualise import (
    NEGATIVE_RGB,
    OUTLINE_RGB,
    POSITIVE_RGB,
    draw_boxes,
    evidence_scale,
    legend,
    note_picture,
)

POS, NEG, WHITE = np.array(POSITIVE_RGB), np.array(NEGATIVE_RGB), np.array([255, 255, 255])


def test_one_convention_red_for_blue_against_white_for_none() -> None:
    rgb = colourise(np.array([[-1.0, 0.0, 1.0, 0.5, 3.0]]), signed=True, scale=1.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 5, 3)
    np.testing.assert_array_equal(rgb[0, 0], NEG)
    np.testing.assert_array_equal(rgb[0, 1], WHITE)
    np.testing.assert_array_equal(rgb[0, 2], POS)
    np.testing.assert_array_equal(rgb[0, 3], np.round((WHITE + POS) / 2))  # half way to saturation
    np.testing.assert_array_equal(rgb[0, 4], POS)  # beyond the scale: saturated


def test_non_negative_methods_use_the_red_half_only() -> None:
    rgb = colourise(np.array([[-1.0, 0.0, 2.0]]), signed=False, scale=2.0)
    np.testing.assert_array_equal(rgb[0, 0], WHITE)  # a negative value is no evidence, never blue
    np.testing.assert_array_equal(rgb[0, 2], POS)


def test_scale_is_a_percentile_of_abs_or_positive_values() -> None:
    a = np.array([[-4.0, 1.0], [2.0, 0.0]])
    assert evidence_scale(a, signed=True, percentile=100) == 4.0
    assert evidence_scale(a, signed=False, percentile=100) == 2.0
    assert evidence_scale(np.zeros((2, 2)), signed=True) == 0.0
    np.testing.assert_array_equal(colourise(np.zeros((2, 2))), np.full((2, 2, 3), 255))  # no evidence: white


def test_unsigned_maps_saturate_at_the_percentile() -> None:
    a = torch.zeros(10, 10)
    a[0, 0] = 1000.0  # one extreme pixel must not wash out the rest
    a[5:, :] = 1.0
    rgb = colourise(a, signed=False, percentile=90)
    assert np.array_equal(rgb[9, 9], rgb[0, 0]) and not np.array_equal(rgb[9, 9], rgb[1, 1])


def test_overlay_opacity_follows_the_evidence() -> None:
    image = np.full((2, 2, 3), 100, np.uint8)
    a = np.array([[0.0, 1.0], [-1.0, 0.5]])
    out = overlay_heatmap(image, a, alpha=0.8, signed=True, scale=1.0)
    np.testing.assert_array_equal(out[0, 0], [100, 100, 100])  # no evidence: the image unchanged
    np.testing.assert_array_equal(out[0, 1], np.round(100 * 0.2 + POS * 0.8))
    np.testing.assert_array_equal(out[1, 0], np.round(100 * 0.2 + NEG * 0.8))
    np.testing.assert_array_equal(out[1, 1], np.round(100 * 0.6 + POS * 0.4))
    grey = overlay_heatmap(np.array([[[200, 0, 0]]], np.uint8), np.zeros((1, 1)), desaturate=1.0)
    np.testing.assert_array_equal(grey[0, 0], [60, 60, 60])  # 0.299 · 200


def test_overlay_resizes_the_map_and_blends() -> None:
    image = torch.rand(3, 32, 32)
    out = overlay_heatmap(image, torch.rand(4, 4), alpha=0.0)
    assert out.dtype == np.uint8 and out.shape == (32, 32, 3)
    np.testing.assert_array_equal(out, np.round(image.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    assert overlay_heatmap(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8)), alpha=1.0).any()
    with pytest.raises(ValueError, match="alpha"):
        overlay_heatmap(image, torch.rand(4, 4), alpha=2.0)


@pytest.mark.parametrize("signed", [True, False])
def test_legend_shows_the_sign_convention_and_the_scale(signed: bool) -> None:
    strip = legend(256, scale=0.0123, signed=signed, explained="warm", note="B-cos at Input")
    assert strip.dtype == np.uint8 and strip.shape[1] == 256 and 40 < strip.shape[0] < 120
    colours = {tuple(p) for p in strip.reshape(-1, 3)}
    assert tuple(POS) in colours  # the bar's red end
    assert (tuple(NEG) in colours) == signed  # blue only where the method has negative values
    wide = legend(1024, scale=1.0, signed=True)
    assert wide.shape[0] > strip.shape[0]  # text grows with pictures shown scaled down


def test_boxes_are_outlined_in_yellow_at_display_scale() -> None:
    out = draw_boxes(np.zeros((64, 64, 3), np.uint8), [(2.0, 3.0, 10.0, 12.0)], [""], scale=4.0)
    np.testing.assert_array_equal(out[12, 8:40:4], np.tile(OUTLINE_RGB, (8, 1)))  # top edge at y = 3 · 4
    np.testing.assert_array_equal(out[20:40:4, 8], np.tile(OUTLINE_RGB, (5, 1)))  # left edge at x = 2 · 4
    assert not out[30, 20].any()  # inside untouched
    labelled = draw_boxes(np.zeros((64, 64, 3), np.uint8), [(2.0, 3.0, 10.0, 12.0)], ["warm"], scale=4.0)
    assert (labelled != out).any()


def test_note_picture_wraps_text_to_the_width() -> None:
    one = note_picture("short", 200)
    many = note_picture("a long sentence " * 10, 200)
    assert one.shape[1] == many.shape[1] == 200 and many.shape[0] > one.shape[0]
    assert note_picture("x", 100, height=100, grey=True).shape == (100, 100, 3)


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
