"""Where the model looks, on average: mean positive explanation maps per class and per group of a split.

For the project's active checkpoint and one split, every image (at most `CAP`, stratified by class and
group) is explained for its own label in batches on the model's device (`attribute_detached`). Each map
keeps its positive part, is pooled to `SIDE`×`SIDE` and divided by its sum, so it says *which share of
the image's positive evidence lies where*; a tile is the mean of those shares over a class, a group, or
the difference between two groups of one class. A shortcut in a fixed place (the demo's badge in the
top-left corner) shows up as a hot spot before anyone draws a box.

The per-image maps are cached on disk per (checkpoint, split, method, layer, cap) under
`<data dir>/cache/mean_maps/`, so the region ranking ("which images put the most evidence in this cell
of a `GRID`×`GRID` grid") needs no recomputation.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core import methods
from core.data import images_to_batch, load_rgb
from core.explain import EXPLAINERS
from services.catalog import require_project
from services.checkpoints import project_checkpoint
from services.database import Database
from services.datasets import group_names, split_records
from services.models import ModelCache, checkpoint_file, model_device
from services.settings import Settings
from store.db import session_scope
from store.projects import list_classes
from store.queries import count_images

log = logging.getLogger(__name__)

CAP = 512  # images explained per split at most (stratified by class and group)
SIDE = 32  # stored maps and mean images are SIDE×SIDE
GRID = 4  # regions for ranking: cells of a GRID×GRID grid
FORMAT = 1  # bump when the cached arrays change meaning
_COMPUTE = threading.Lock()  # one mean-map computation at a time per server (the CPU is shared with requests)


@dataclass(frozen=True, eq=False)
class Tile:
    """One averaged map. `mean (SIDE, SIDE)`: mean share of positive evidence per pixel (sums to 1), or for a
    difference the first side's mean minus the other's; `backdrop (SIDE, SIDE, 3)` uint8 mean image; `rows`
    the images averaged (for a difference: the first side, `other_rows` the second)."""

    kind: str  # "class", "group" or "difference"
    title: str
    mean: np.ndarray
    backdrop: np.ndarray
    rows: np.ndarray
    other_rows: np.ndarray

    @property
    def signed(self) -> bool:
        """Differences have both signs; class and group means are shares (≥ 0)."""
        return self.kind == "difference"

    @property
    def count(self) -> int:
        """Images averaged (both sides for a difference)."""
        return len(self.rows) + len(self.other_rows)


@dataclass(frozen=True, eq=False)
class MeanMaps:
    """Per-image normalised positive maps of a split under one checkpoint, and the tiles made from them.

    Arrays (N rows, one per explained image): `image_ids (N,)`, `labels (N,)` class explained, `groups (N,)`
    index into `group_names` or -1, `maps (N, SIDE, SIDE)` float32 each summing to 1 (0 without positive
    evidence), `thumbs (N, SIDE, SIDE, 3)` uint8.
    """

    checkpoint_id: int
    checkpoint_sha: str
    split: str
    method: str
    layer: str
    images_in_split: int
    cap: int
    classes: tuple[str, ...]
    group_names: tuple[str, ...]
    image_ids: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    maps: np.ndarray
    thumbs: np.ndarray
    from_cache: bool = False

    @property
    def images_used(self) -> int:
        """How many distinct images were explained."""
        return len(np.unique(self.image_ids))

    def path(self, data_dir: Path) -> Path:
        """The cached arrays' file under `data_dir`."""
        return cache_path(data_dir, self.checkpoint_sha, self.split, self.method, self.layer, self.cap)

    @property
    def capped(self) -> bool:
        """Whether fewer images were explained than the split holds."""
        return self.images_used < self.images_in_split

    def tiles(self) -> list[Tile]:
        """Per class, per group, and per pair of groups of one class (their difference), in that order."""
        tiles = [self._tile("class", f"{name} · all", self.labels == c) for c, name in enumerate(self.classes)]
        tiles += [self._tile("group", name, self.groups == g) for g, name in enumerate(self.group_names)]
        for c, name in enumerate(self.classes):
            present = [g for g in range(len(self.group_names)) if ((self.labels == c) & (self.groups == g)).any()]
            pairs = [(present[0], [present[1]])] if len(present) == 2 else \
                [(g, [o for o in present if o != g]) for g in present] if len(present) > 2 else []
            for g, others in pairs:
                first = (self.labels == c) & (self.groups == g)
                second = (self.labels == c) & np.isin(self.groups, others)
                other = self.group_names[others[0]] if len(others) == 1 else f"rest of {name}"
                tiles.append(self._difference(f"{self.group_names[g]} − {other}", first, second))
        return [t for t in tiles if t.count]

    def _tile(self, kind: str, title: str, rows: np.ndarray) -> Tile:
        index = np.flatnonzero(rows)
        return Tile(kind, title, _mean(self.maps, index), _mean_image(self.thumbs, index), index,
                    np.zeros(0, np.int64))

    def _difference(self, title: str, first: np.ndarray, second: np.ndarray) -> Tile:
        a, b = np.flatnonzero(first), np.flatnonzero(second)
        return Tile("difference", title, _mean(self.maps, a) - _mean(self.maps, b),
                    _mean_image(self.thumbs, np.concatenate([a, b])), a, b)

    def cell_shares(self, row: int, col: int, grid: int = GRID) -> np.ndarray:
        """`(N,)` the share of each image's positive evidence inside cell (`row`, `col`) of a `grid`×`grid` grid."""
        if not (0 <= row < grid and 0 <= col < grid):
            raise ValueError(f"cell ({row}, {col}) is outside a {grid}×{grid} grid")
        y0, y1, x0, x1 = _cell_bounds(row, col, grid, self.maps.shape[1])
        return self.maps[:, y0:y1, x0:x1].sum(axis=(1, 2))

    def rank(self, tile: Tile, row: int, col: int, grid: int = GRID) -> list[tuple[int, float]]:
        """The tile's images that put the most positive evidence in the cell first: `(image id, share)`.

        For a difference, the side that relies more on the cell (the first where the difference is positive).
        """
        shares = self.cell_shares(row, col, grid)
        rows = tile.rows
        if tile.signed and cell_sums(tile.mean, grid)[row, col] < 0:
            rows = tile.other_rows
        order = rows[np.argsort(-shares[rows], kind="stable")]
        return [(int(self.image_ids[i]), float(shares[i])) for i in order]


def _mean(maps: np.ndarray, index: np.ndarray) -> np.ndarray:
    return maps[index].mean(axis=0) if len(index) else np.zeros(maps.shape[1:], np.float32)


def _mean_image(thumbs: np.ndarray, index: np.ndarray) -> np.ndarray:
    if not len(index):
        return np.zeros(thumbs.shape[1:], np.uint8)
    return np.round(thumbs[index].astype(np.float64).mean(axis=0)).astype(np.uint8)


def _cell_bounds(row: int, col: int, grid: int, side: int) -> tuple[int, int, int, int]:
    edges = np.round(np.linspace(0, side, grid + 1)).astype(int)
    return int(edges[row]), int(edges[row + 1]), int(edges[col]), int(edges[col + 1])


def cell_sums(mean: np.ndarray, grid: int = GRID) -> np.ndarray:
    """`(grid, grid)` sums of a `(side, side)` map over the cells of a `grid`×`grid` grid."""
    out = np.zeros((grid, grid))
    for r in range(grid):
        for c in range(grid):
            y0, y1, x0, x1 = _cell_bounds(r, c, grid, mean.shape[0])
            out[r, c] = float(mean[y0:y1, x0:x1].sum())
    return out


def peak_cell(tile: Tile, grid: int = GRID) -> tuple[int, int]:
    """The cell with the most evidence (a difference: the largest |difference|), as `(row, col)`."""
    sums = cell_sums(tile.mean, grid)
    flat = int(np.argmax(np.abs(sums) if tile.signed else sums))
    return flat // grid, flat % grid


def stratified(strata: Sequence[Hashable], cap: int) -> list[int]:
    """Indices of at most `cap` items, every stratum represented in proportion (largest remainders), and
    evenly spread within a stratum (items in the given order); all indices when there are at most `cap`."""
    if len(strata) <= cap:
        return list(range(len(strata)))
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(strata):
        members[key].append(i)
    quota = {k: cap * len(v) / len(strata) for k, v in members.items()}
    take = {k: int(q) for k, q in quota.items()}
    for k in sorted(quota, key=lambda k: (take[k] - quota[k], str(k)))[:cap - sum(take.values())]:
        take[k] += 1  # largest remainders first
    chosen = [v[int(j * len(v) / take[k])] for k, v in members.items() for j in range(take[k])]
    return sorted(chosen)


def cache_path(data_dir: Path, sha: str, split: str, method: str, layer: str, cap: int) -> Path:
    """Where the per-image maps of one (checkpoint, split, method, layer, cap) are kept."""
    safe_split = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in split)
    return data_dir / "cache" / "mean_maps" / f"{sha[:16]}-{safe_split}-{method}-{layer}-n{cap}-v{FORMAT}.npz"


def mean_maps(db: Database, settings: Settings, models: ModelCache, project: str | None, split: str,
              method: str | None = None, *, cap: int = CAP, compute: bool = True, batch_size: int = 64
              ) -> MeanMaps | None:
    """The mean maps of `split` under the project's active checkpoint, from the disk cache or computed.

    `method` defaults to the model's own (B-cos for B-cos nets); maps are taken where the method is read
    (`methods.evaluation_layer`). A cached result made when the split held another number of images is
    stale (an import since). With `compute=False` returns None when nothing usable is cached. ValueError /
    NotFoundError (with what to do) for no project, no active model, a method the model lacks, an empty split.
    """
    with session_scope(db) as session:
        row = require_project(session, project)
        checkpoint = project_checkpoint(session, row, None)
        sha, checkpoint_id, checkpoint_path, arch = checkpoint.sha256, checkpoint.id, checkpoint.path, checkpoint.arch
        total, name = count_images(session, project_id=row.id, split=split), row.name
    is_bcos = methods.ARCHITECTURES[arch].bcos if arch in methods.ARCHITECTURES else True
    method = method or methods.default_method(is_bcos)
    if method not in methods.METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(methods.METHODS)}")
    if methods.METHODS[method].needs_bcos and not is_bcos:
        raise ValueError(f"{methods.METHODS[method].label} needs a B-cos model; choose "
                         f"{methods.METHODS[methods.default_method(False)].label}")
    layer = methods.evaluation_layer(method)
    path = cache_path(settings.data_dir, sha, split, method, layer, cap)
    cached = _load(path) if path.exists() else None
    if cached is not None and cached.images_in_split == total:
        return cached
    if not compute:
        return None
    if total == 0:
        raise ValueError(f"project {name!r} has no images in split {split!r}; choose another split")
    with session_scope(db) as session:
        row = require_project(session, project)
        groups = group_names(session, row.id)
        records = [r for r in split_records(session, settings, row, split, groups) if r.labels]
        classes = tuple(c.name for c in list_classes(session, row.id))
        image_size = row.image_size
    pairs = [(r, label) for r in records for label in r.labels]  # multi-label: one row per label
    chosen = [pairs[i] for i in stratified([(label, r.group) for r, label in pairs], cap)]
    with _COMPUTE:
        device = model_device(settings)
        model = models.get(checkpoint_file(settings, checkpoint_path), device, expected_classes=list(classes)).model
        maps, thumbs = _explain(model, [r.path for r, _ in chosen], [label for _, label in chosen], image_size,
                                method, layer, batch_size)
    result = MeanMaps(checkpoint_id, sha, split, method, layer, total, cap, classes, tuple(groups),
                      np.array([r.key for r, _ in chosen], np.int64), np.array([lb for _, lb in chosen], np.int64),
                      np.array([-1 if r.group is None else r.group for r, _ in chosen], np.int64), maps, thumbs)
    _save(path, result)
    log.info("mean maps of %s/%s (%s at %s): %d images in %s", name, split, method, layer, len(chosen), path)
    return result


def _explain(model: torch.nn.Module, paths: Sequence[Path], labels: Sequence[int], image_size: int, method: str,
             layer: str, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """`(maps (N, SIDE, SIDE) float32 normalised to sum 1, thumbs (N, SIDE, SIDE, 3) uint8)` in batches."""
    device = next(model.parameters()).device
    maps, thumbs = [], []
    with EXPLAINERS[method](model, layer=layer) as explainer:
        for start in range(0, len(paths), batch_size):
            batch = images_to_batch([load_rgb(p) for p in paths[start:start + batch_size]], image_size).to(device)
            targets = torch.tensor(labels[start:start + batch_size], device=device)
            out = explainer.attribute_detached(batch, targets)
            positive = out.maps.detach().float().clamp_min(0)[:, None]  # (B, 1, h, w)
            mode = "area" if positive.shape[-1] >= SIDE else "bilinear"
            pooled = F.interpolate(positive, size=(SIDE, SIDE), mode=mode)[:, 0]  # (B, S, S)
            total = pooled.sum(dim=(1, 2), keepdim=True)
            pooled = torch.where(total > 0, pooled / total.clamp_min(1e-30), torch.zeros_like(pooled))
            small = F.interpolate(batch, size=(SIDE, SIDE), mode="area")  # (B, 3, S, S)
            maps.append(pooled.cpu().numpy().astype(np.float32))
            thumbs.append((small * 255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(maps), np.concatenate(thumbs)


def _save(path: Path, result: MeanMaps) -> None:
    """Write the arrays atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "checkpoint_id": result.checkpoint_id, "checkpoint_sha": result.checkpoint_sha,
            "split": result.split, "method": result.method, "layer": result.layer,
            "images_in_split": result.images_in_split, "cap": result.cap, "classes": list(result.classes),
            "group_names": list(result.group_names)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, meta=np.array(json.dumps(meta)), image_ids=result.image_ids,
                            labels=result.labels, groups=result.groups, maps=result.maps, thumbs=result.thumbs)
    os.replace(tmp, path)


def _load(path: Path) -> MeanMaps | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != FORMAT:
                return None
            arrays = {k: data[k] for k in ("image_ids", "labels", "groups", "maps", "thumbs")}
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable mean-map cache %s: %s", path, exc)
        return None
    return MeanMaps(meta["checkpoint_id"], meta["checkpoint_sha"], meta["split"], meta["method"], meta["layer"],
                    meta["images_in_split"], meta["cap"], tuple(meta["classes"]), tuple(meta["group_names"]), **arrays,
                    from_cache=True)


__all__ = ["CAP", "GRID", "SIDE", "MeanMaps", "Tile", "cache_path", "cell_sums", "mean_maps", "peak_cell",
           "stratified"]
