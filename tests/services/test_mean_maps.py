"""Mean maps on hand-made inputs: stratified sampling, tiles, cell shares, ranking, and the overview's geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.mean_map_pictures import TILE_PX, hit, layout, render_overview, shared_scales
from services.mean_maps import MeanMaps, cell_sums, peak_cell, stratified


def _maps() -> MeanMaps:
    """Four 4×4 maps (each sums to 1): class 0 in groups 0 and 1, class 1 in group 2.

    Image 10 puts all its evidence in the top-left pixel, image 11 spreads it evenly, image 12 puts half in the
    top-left 2×2 cell and half in the bottom-right one, image 13 all in the bottom-right pixel.
    """
    maps = np.zeros((4, 4, 4), np.float32)
    maps[0, 0, 0] = 1.0
    maps[1] = 1 / 16
    maps[2, :2, :2] = 0.5 / 4
    maps[2, 2:, 2:] = 0.5 / 4
    maps[3, 3, 3] = 1.0
    thumbs = np.zeros((4, 4, 4, 3), np.uint8)
    thumbs[:, :, :, 0] = np.array([0, 100, 200, 40], np.uint8)[:, None, None]
    return MeanMaps(checkpoint_id=1, checkpoint_sha="ab" * 32, split="val", method="bcos", layer="input",
                    images_in_split=5, cap=4, classes=("warm", "cool"), group_names=("w/a", "w/b", "c/a"),
                    image_ids=np.array([10, 11, 12, 13]), labels=np.array([0, 0, 0, 1]),
                    groups=np.array([0, 1, 1, 2]), maps=maps, thumbs=thumbs)


def test_cell_shares_are_the_evidence_inside_each_cell() -> None:
    maps = _maps()
    np.testing.assert_allclose(maps.cell_shares(0, 0, grid=2), [1.0, 0.25, 0.5, 0.0])
    np.testing.assert_allclose(maps.cell_shares(1, 1, grid=2), [0.0, 0.25, 0.5, 1.0])
    with pytest.raises(ValueError, match="outside"):
        maps.cell_shares(2, 0, grid=2)
    assert maps.images_used == 4 and maps.capped  # 4 of the split's 5 images


def test_tiles_average_per_class_per_group_and_difference_of_a_class_groups() -> None:
    tiles = _maps().tiles()
    assert [t.title for t in tiles] == ["warm · all", "cool · all", "w/a", "w/b", "c/a", "w/a − w/b"]
    warm, cool, wa, wb, _ca, diff = tiles
    np.testing.assert_allclose(cell_sums(warm.mean, 2), [[(1 + 0.25 + 0.5) / 3, 0.25 / 3], [0.25 / 3, 0.75 / 3]])
    np.testing.assert_allclose(cell_sums(wb.mean, 2), [[0.375, 0.125], [0.125, 0.375]])
    np.testing.assert_allclose(diff.mean, wa.mean - wb.mean)  # w/a − w/b within class warm
    assert diff.signed and diff.count == 3 and cool.count == 1
    np.testing.assert_array_equal(warm.backdrop[0, 0], [100, 0, 0])  # mean of 0, 100, 200 in red
    assert peak_cell(warm, 2) == (0, 0) and peak_cell(cool, 2) == (1, 1)
    assert all(abs(float(t.mean.sum()) - 1) < 1e-6 for t in tiles if not t.signed)  # shares stay shares


def test_rank_puts_the_images_relying_most_on_the_cell_first() -> None:
    maps = _maps()
    warm, *_, diff = maps.tiles()
    assert maps.rank(warm, 0, 0, grid=2) == [(10, 1.0), (12, 0.5), (11, 0.25)]
    assert maps.rank(warm, 1, 1, grid=2) == [(12, 0.5), (11, 0.25), (10, 0.0)]
    # a difference ranks the side that relies more on the cell: w/a at the top left, w/b at the bottom right
    assert [i for i, _ in maps.rank(diff, 0, 0, grid=2)] == [10]
    assert [i for i, _ in maps.rank(diff, 1, 1, grid=2)] == [12, 11]


@pytest.mark.parametrize(("strata", "cap", "expected"), [
    (["a"] * 4, 10, [0, 1, 2, 3]),  # under the cap: everything
    (["a"] * 6 + ["b"] * 2, 4, [0, 2, 4, 6]),  # 6:2 → 3:1, evenly spread inside a stratum
    (["a", "b", "c"] * 3, 3, [0, 1, 2]),  # one of each
    (["a"] * 5 + ["b"] * 5 + ["c"], 4, [0, 2, 5, 7]),  # quotas 1.8, 1.8, 0.4: largest remainders get the rest
])
def test_stratified_keeps_every_stratum_in_proportion(strata: list[str], cap: int, expected: list[int]) -> None:
    assert stratified(strata, cap) == expected


def test_a_click_on_the_overview_finds_the_map_and_the_cell() -> None:
    where = layout(10, title_height=20)
    x0, y0 = where.origins[9]  # second row, second tile
    assert where.origins[8][1] == y0 > where.origins[0][1]
    assert hit(where, x0 + 1, y0 + 1) == (9, (0, 0))
    assert hit(where, x0 + TILE_PX - 1, y0 + TILE_PX // 2) == (9, (2, 3))
    assert hit(where, x0 + 1, y0 + TILE_PX + 5) is None  # on the title
    assert hit(where, 0, 0) is None  # in the gap


def test_overview_picture_has_every_tile_and_a_legend(tmp_path: Path) -> None:
    maps = _maps()
    tiles = maps.tiles()
    share, diff = shared_scales(tiles)
    assert share > 0 and diff > 0
    path = render_overview(maps, tmp_path, (0, (1, 1)))
    from PIL import Image

    with Image.open(path) as picture:
        assert picture.width == layout(len(tiles), 0).width and picture.height > TILE_PX
    assert render_overview(maps, tmp_path, (0, (1, 1))) == path  # written once per selection
