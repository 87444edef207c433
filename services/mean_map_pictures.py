"""Pictures of mean maps (services.mean_maps) for the browser: tiles, and one tile large with its grid and legend.

Same colour convention as every explanation overlay (core.explain.visualise): red = positive evidence,
drawn over the tile's mean image. Values are shown relative to an even spread (1 = the share a pixel
would hold if evidence were spread evenly), and all class and group tiles share one scale, all
differences another, so tiles compare by colour.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image as PILImage

from core.explain.visualise import OUTLINE_RGB, evidence_scale, legend, note_picture, overlay_heatmap
from services.mean_maps import GRID, MeanMaps, Tile

TILE_PX = 128  # a row of eight fits the page about 1:1
GAP = 8
COLUMNS = 8
MAX_TILES = 24  # more classes and groups than that: the first 24 tiles (classes first), and the UI says so
FADE = 0.45  # how far the mean image is faded towards white under the map
RENDER_VERSION = 4


def relative(tile: Tile) -> np.ndarray:
    """The tile's map in units of an even spread: `mean · SIDE²` (1 everywhere for evenly spread evidence)."""
    return tile.mean * tile.mean.size


def shared_scales(tiles: list[Tile]) -> tuple[float, float]:
    """`(share scale, difference scale)`: where colours saturate, one value for all class/group tiles and one
    for all differences (the 99.5th percentile of the largest), so tiles compare by colour."""
    shares = [evidence_scale(relative(t), signed=False) for t in tiles if not t.signed]
    diffs = [evidence_scale(relative(t), signed=True) for t in tiles if t.signed]
    return max(shares, default=1.0) or 1.0, max(diffs, default=1.0) or 1.0


def tile_picture(tile: Tile, *, size: int, scale: float, cell: tuple[int, int] | None = None,
                 grid: int = GRID) -> np.ndarray:
    """`(size, size, 3)` uint8: the tile's map over its mean image, the grid's lines, `cell` outlined."""
    backdrop = cv2.resize(tile.backdrop, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float64)
    backdrop = np.round(backdrop * (1 - FADE) + 255 * FADE).astype(np.uint8)  # pale: the evidence must stand out
    out = overlay_heatmap(backdrop, relative(tile), signed=tile.signed, scale=scale, alpha=0.9, desaturate=0.7)
    edges = np.round(np.linspace(0, size, grid + 1)).astype(int)
    for edge in edges[1:-1]:  # light, thin grid lines: the regions a click picks
        out[:, edge] = (out[:, edge].astype(np.int32) * 2 + 255) // 3
        out[edge, :] = (out[edge, :].astype(np.int32) * 2 + 255) // 3
    if cell is not None:
        r, c = cell
        thick = max(2, size // 128)
        cv2.rectangle(out, (int(edges[c]), int(edges[r])), (int(edges[c + 1]) - 1, int(edges[r + 1]) - 1),
                      (20, 20, 20), thick + 2)
        cv2.rectangle(out, (int(edges[c]), int(edges[r])), (int(edges[c + 1]) - 1, int(edges[r + 1]) - 1),
                      OUTLINE_RGB, thick)
    return out


def pictures_dir(maps: MeanMaps, data_dir: Path) -> Path:
    """Where the pictures of these mean maps are written: next to their cached arrays."""
    arrays = maps.path(data_dir)
    folder = arrays.parent / f"{arrays.stem}-pictures-r{RENDER_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def caption(tile: Tile) -> str:
    """A short tile title: what it averages and over how many images."""
    return f"{tile.title} ({tile.count:,})"


@dataclass(frozen=True)
class Layout:
    """Where tile `i` sits in the overview picture: `origins[i] = (x, y)` of its map (TILE_PX square)."""

    origins: tuple[tuple[int, int], ...]
    width: int
    maps_height: int  # the legend starts below this


def layout(count: int, title_height: int) -> Layout:
    """Tiles left to right, `COLUMNS` per row, each a map with its title under it."""
    columns = max(1, min(COLUMNS, count))
    row_height = TILE_PX + title_height + GAP
    origins = tuple((GAP + (i % columns) * (TILE_PX + GAP), GAP + (i // columns) * row_height) for i in range(count))
    rows = -(-count // columns) if count else 0
    return Layout(origins, GAP + columns * (TILE_PX + GAP), GAP + rows * row_height)


def hit(where: Layout, x: float, y: float, grid: int = GRID) -> tuple[int, tuple[int, int]] | None:
    """The tile and cell under picture pixel (`x`, `y`), or None (a gap, a title, the legend)."""
    for index, (x0, y0) in enumerate(where.origins):
        if x0 <= x < x0 + TILE_PX and y0 <= y < y0 + TILE_PX:
            return index, (int((y - y0) * grid // TILE_PX), int((x - x0) * grid // TILE_PX))
    return None


def _title_height(tiles: list[Tile]) -> int:
    return max((note_picture(caption(t), TILE_PX, size=11).shape[0] for t in tiles), default=0)


def overview_layout(maps: MeanMaps) -> Layout:
    """The layout of `render_overview`'s picture for these maps (to turn a click into a tile and cell)."""
    tiles = maps.tiles()[:MAX_TILES]
    return layout(len(tiles), _title_height(tiles))


def render_overview(maps: MeanMaps, data_dir: Path, selected: tuple[int, tuple[int, int]] | None = None) -> Path:
    """All tiles (at most `MAX_TILES`) in one picture with their titles, grids and a legend; the `selected`
    tile framed and its cell outlined. Written once per selection."""
    tiles = maps.tiles()[:MAX_TILES]
    name = "overview" if selected is None else f"overview-t{selected[0]}-r{selected[1][0]}c{selected[1][1]}"
    path = pictures_dir(maps, data_dir) / f"{name}.png"
    if path.exists():
        return path
    share, diff = shared_scales(tiles)
    titles = [note_picture(caption(t), TILE_PX, size=11) for t in tiles]
    where = layout(len(tiles), max((t.shape[0] for t in titles), default=0))
    strip = _legends(where.width, share, diff, any(t.signed for t in tiles))
    canvas = np.full((where.maps_height + strip.shape[0], where.width, 3), 255, np.uint8)
    for i, ((x, y), tile, title) in enumerate(zip(where.origins, tiles, titles)):
        cell = selected[1] if selected is not None and selected[0] == i else None
        canvas[y:y + TILE_PX, x:x + TILE_PX] = tile_picture(tile, size=TILE_PX, scale=diff if tile.signed else share,
                                                            cell=cell)
        canvas[y + TILE_PX:y + TILE_PX + title.shape[0], x:x + TILE_PX] = title
        if cell is not None:  # frame the chosen map
            cv2.rectangle(canvas, (x - 3, y - 3), (x + TILE_PX + 2, y + TILE_PX + 2), (240, 120, 0), 2)
    canvas[where.maps_height:] = strip
    _save_png(canvas, path)
    return path


def _save_png(picture: np.ndarray, path: Path) -> None:
    """Write atomically: a second user asking for the same picture never reads half a file."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.png")
    PILImage.fromarray(picture).save(tmp)
    os.replace(tmp, path)


def _legends(width: int, share: float, diff: float, with_differences: bool) -> np.ndarray:
    """One legend for the class and group maps and, beside it, one for the differences."""
    note = "× an even spread of each image's positive evidence (1 = evenly spread)"
    half = width // 2 if with_differences else width
    left = legend(half, scale=share, signed=False, note=note, size=11,
                  keys=("red: where the positive evidence lies, on average", ""))
    if not with_differences:
        return left
    right = legend(width - half, scale=diff, signed=True, size=11,
                   note="a difference A − B between two groups of one class",
                   keys=("red: more evidence here in A", "blue: more in B"))
    height = max(left.shape[0], right.shape[0])
    pad = [np.full((height - p.shape[0], p.shape[1], 3), 255, np.uint8) for p in (left, right)]
    return np.concatenate([np.concatenate([left, pad[0]]), np.concatenate([right, pad[1]])], axis=1)


__all__ = ["COLUMNS", "MAX_TILES", "TILE_PX", "Layout", "caption", "hit", "layout", "overview_layout", "relative",
           "render_overview", "shared_scales", "tile_picture"]
