"""The shortcut suite's data sets: determinism, group proportions, tight boxes, the cue where it is planted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from core.data import load_rgb
from core.data.shortcuts import (
    BENCHMARKS,
    SHAPE_CUE_COLOURS,
    SHAPE_CUE_REGION,
    ShortcutConfig,
    aligned_groups,
    generate_shortcut_dataset,
    shortcut_records,
)

TINY = ShortcutConfig(seed=5, train_size=60, val_size=20, test_size=20, imported_fraction=0.1)
NEW = [name for name in BENCHMARKS if name != "demo"]


def digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_same_seed_gives_identical_bytes_and_another_seed_other_images(tmp_path: Path, name: str) -> None:
    generate_shortcut_dataset(name, tmp_path / "a", TINY)
    generate_shortcut_dataset(name, tmp_path / "b", TINY)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    generate_shortcut_dataset(name, tmp_path / "c", ShortcutConfig(**{**TINY.__dict__, "seed": 6}))
    a, c = digest(tmp_path / "a"), digest(tmp_path / "c")
    assert sum(a[k] != c.get(k) for k in a if k.endswith(".png")) >= 0.9 * sum(k.endswith(".png") for k in a)


@pytest.mark.parametrize("name", NEW)
def test_regeneration_is_skipped_when_current(tmp_path: Path, name: str) -> None:
    manifest = generate_shortcut_dataset(name, tmp_path, TINY)
    before = manifest.stat().st_mtime_ns
    generate_shortcut_dataset(name, tmp_path, TINY)
    assert manifest.stat().st_mtime_ns == before
    (tmp_path / "val" / "val_00000.png").unlink()
    generate_shortcut_dataset(name, tmp_path, TINY)
    assert (tmp_path / "val" / "val_00000.png").is_file()


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_groups_proportions_and_boxes(tmp_path: Path, name: str) -> None:
    config = ShortcutConfig(seed=2, train_size=200, val_size=40, test_size=40)
    generate_shortcut_dataset(name, tmp_path, config)
    bench = BENCHMARKS[name]
    aligned = {bench.groups.index(g) for g in aligned_groups(name)}
    for split, share in (("train", 0.95), ("val", 0.5), ("test", 0.5)):
        records = shortcut_records(name, tmp_path, split, boxes="all")
        assert len(records) == getattr(config, f"{split}_size")
        assert sum(r.group in aligned for r in records) == pytest.approx(share * len(records), abs=1)
        if not bench.multi_label:  # balanced classes, and every group present on val/test
            assert sum(r.labels == (0,) for r in records) == len(records) // 2
            assert {r.group for r in records} == set(range(len(bench.groups)))
        for r in records:
            assert sorted(r.box_labels) == sorted(r.labels) and len(r.boxes) == len(r.labels)
            for x0, y0, x1, y1 in r.boxes:
                assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
    train = shortcut_records(name, tmp_path, "train")  # the boxes a new project has: 10% of train
    assert sum(bool(r.boxes) for r in train) == pytest.approx(0.1 * len(train), abs=2)
    assert all(r.boxes for r in shortcut_records(name, tmp_path, "val"))


def test_multilabel_cue_lies_on_every_badge(tmp_path: Path) -> None:
    generate_shortcut_dataset("multilabel", tmp_path, TINY)
    images = json.loads((tmp_path / "manifest.json").read_text())["images"]
    for entry in images:
        if entry["group"] == "cue-agrees":
            assert entry["cues"] == entry["labels"]
        else:
            assert set(entry["cues"]).isdisjoint(entry["labels"]) and len(entry["cues"]) + len(entry["labels"]) == 3
    assert {len(e["labels"]) for e in images} == {1, 2}


def test_shape_boxes_are_tight_and_the_cue_is_where_planted(tmp_path: Path) -> None:
    generate_shortcut_dataset("shape", tmp_path, TINY)
    x0, y0, x1, y1 = SHAPE_CUE_REGION
    for record in shortcut_records("shape", tmp_path, "val"):
        pixels = load_rgb(record.path).astype(float) / 255
        cue = pixels[y0 + 2:y1 - 2, x0 + 2:x1 - 2].reshape(-1, 3).mean(0)
        expected = SHAPE_CUE_COLOURS[_cue_of(tmp_path, record.key)]
        assert np.abs(cue - np.asarray(expected)).max() < 0.06
        bx0, by0, bx1, by1 = (int(v) for v in record.boxes[0])
        assert bx1 <= x0 - 3 or by1 <= y0 - 3  # the object box never contains the cue
        inside = pixels[by0:by1, bx0:bx1]
        assert inside.shape[0] >= 10 and inside.shape[1] >= 10


def _cue_of(directory: Path, key: int) -> int:
    return json.loads((directory / "manifest.json").read_text())["images"][key]["cues"][0]


def test_learnability_config_carries_no_cue_information(tmp_path: Path) -> None:
    generate_shortcut_dataset("texture", tmp_path, ShortcutConfig(train_size=40, val_size=4, test_size=4,
                                                                  train_aligned=0.5))
    train = shortcut_records("texture", tmp_path, "train")
    assert sum(r.group in (0, 3) for r in train) == 20  # half aligned in each class
