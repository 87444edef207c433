"""boxes_to_masks: hand-computed cases, a per-pixel loop reference and geometry properties."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.guidance import boxes_to_masks


def loop_masks(boxes: torch.Tensor, valid: torch.Tensor, height: int, width: int, dilation: float = 0.0):
    """Plain per-image, per-box, per-pixel reference of the pixel-centre rule."""
    out = torch.zeros(boxes.shape[0], height, width, dtype=torch.bool)
    for b in range(boxes.shape[0]):
        for k in range(boxes.shape[1]):
            if not valid[b, k]:
                continue
            x0, y0, x1, y1 = (float(v) for v in boxes[b, k])
            gx, gy = dilation * max(x1 - x0, 0.0), dilation * max(y1 - y0, 0.0)
            x0, x1 = max(x0 - gx, 0.0), min(x1 + gx, float(width))
            y0, y1 = max(y0 - gy, 0.0), min(y1 + gy, float(height))
            for r in range(height):
                for c in range(width):
                    if x0 <= c + 0.5 < x1 and y0 <= r + 0.5 < y1:
                        out[b, r, c] = True
    return out


def one_box(x0: float, y0: float, x1: float, y1: float, size: int = 4, dilation: float = 0.0) -> torch.Tensor:
    return boxes_to_masks(torch.tensor([[[x0, y0, x1, y1]]]), torch.tensor([[True]]), size, size, dilation=dilation)[0]


def test_integer_box_is_end_exclusive() -> None:
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[1:3, 1:3] = True
    assert torch.equal(one_box(1, 1, 3, 3), expected)


def test_fractional_edges_follow_pixel_centres() -> None:
    assert one_box(0.4, 0, 2.6, 1)[0].tolist() == [True, True, True, False]
    assert one_box(0.6, 0, 2.5, 1)[0].tolist() == [False, True, False, False]
    assert one_box(0.5, 0, 2.51, 1)[0].tolist() == [True, True, True, False]


def test_union_of_boxes_and_invalid_slots_ignored() -> None:
    boxes = torch.tensor([[[0, 0, 1, 1], [3, 3, 4, 4], [0, 0, 4, 4]]], dtype=torch.float32)
    valid = torch.tensor([[True, True, False]])
    mask = boxes_to_masks(boxes, valid, 4, 4)[0]
    assert mask.sum() == 2 and mask[0, 0] and mask[3, 3]


def test_no_boxes_and_degenerate_boxes_give_empty_masks() -> None:
    assert not boxes_to_masks(torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.bool), 4, 5).any()
    assert not one_box(3, 3, 1, 1).any()
    assert boxes_to_masks(torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.bool), 4, 5).shape == (2, 4, 5)


def test_dilation_grows_each_side_by_box_size_and_clamps() -> None:
    assert one_box(1, 1, 3, 3, dilation=0.5).all()  # grows by 1 px each side: (0, 0, 4, 4)
    quarter = one_box(1, 1, 3, 3, dilation=0.25)  # (0.5, 0.5, 3.5, 3.5): centres 0.5 .. 2.5
    assert quarter[:3, :3].all() and quarter.sum() == 9
    assert one_box(0, 0, 2, 2, dilation=1.0).all()  # (-2, -2, 4, 4) clamped to the image


def test_integer_boxes_are_accepted() -> None:
    boxes = torch.tensor([[[1, 1, 3, 3]]])
    assert boxes_to_masks(boxes, torch.tensor([[True]]), 4, 4).sum() == 4


def test_matches_loop_reference_on_random_boxes() -> None:
    gen = torch.Generator().manual_seed(0)
    corners = torch.rand(5, 6, 4, generator=gen) * torch.tensor([14.0, 10.0, 14.0, 10.0]) - 2
    boxes = torch.cat((corners[..., :2].minimum(corners[..., 2:]), corners[..., :2].maximum(corners[..., 2:])), -1)
    valid = torch.rand(5, 6, generator=gen) > 0.3
    for dilation in (0.0, 0.1, 0.5):
        got = boxes_to_masks(boxes, valid, 8, 12, dilation=dilation)
        assert torch.equal(got, loop_masks(boxes, valid, 8, 12, dilation))


coordinate = st.integers(min_value=-3, max_value=12)


@settings(max_examples=60, deadline=None)
@given(x0=coordinate, y0=coordinate, x1=coordinate, y1=coordinate)
def test_integer_box_covers_exactly_its_clipped_area(x0: int, y0: int, x1: int, y1: int) -> None:
    height, width = 7, 9
    mask = boxes_to_masks(
        torch.tensor([[[x0, y0, x1, y1]]], dtype=torch.float32), torch.tensor([[True]]), height, width
    )[0]
    w = max(min(x1, width) - max(x0, 0), 0)
    h = max(min(y1, height) - max(y0, 0), 0)
    assert int(mask.sum()) == w * h
    if w * h:
        assert mask[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)].all()


@settings(max_examples=60, deadline=None)
@given(
    box=st.tuples(*(st.floats(min_value=-2, max_value=10, allow_nan=False) for _ in range(4))),
    d1=st.floats(min_value=0, max_value=1),
    d2=st.floats(min_value=0, max_value=1),
)
def test_dilation_is_monotone(box: tuple[float, float, float, float], d1: float, d2: float) -> None:
    small, large = sorted((d1, d2))
    boxes = torch.tensor([[box]], dtype=torch.float64)
    valid = torch.tensor([[True]])
    inner = boxes_to_masks(boxes, valid, 8, 8, dilation=small)
    outer = boxes_to_masks(boxes, valid, 8, 8, dilation=large)
    assert not (inner & ~outer).any()


def test_half_precision_boxes_keep_pixel_centres_exact() -> None:
    # float16 cannot hold 1024.5 or 1025.5; the centres are compared in float32.
    boxes = torch.tensor([[[1024.0, 0, 1026, 1]]], dtype=torch.float16)
    mask = boxes_to_masks(boxes, torch.tensor([[True]]), 1, 1030)[0, 0]
    assert mask.nonzero().flatten().tolist() == [1024, 1025]
