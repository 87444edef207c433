"""The demo data set: determinism, proportions, geometry, and the planted signals measured from pixels."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.data import GROUPS, SyntheticConfig, demo_records, generate_demo_dataset, load_manifest, load_rgb
from tests.core.data.conftest import SMALL

TINY = SyntheticConfig(seed=11, train_size=40, val_size=10, test_size=20)


def digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    generate_demo_dataset(tmp_path / "a", TINY)
    generate_demo_dataset(tmp_path / "b", TINY)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_parallel_generation_gives_the_serial_bytes_and_reports_progress(tmp_path: Path) -> None:
    config = replace(TINY, train_size=240)  # 3 chunks of train, so the pool has work to share
    progress: list[tuple[int, int]] = []
    generate_demo_dataset(tmp_path / "serial", config, workers=1)
    generate_demo_dataset(tmp_path / "parallel", config, workers=2, on_progress=lambda *p: progress.append(p))
    assert digest(tmp_path / "serial") == digest(tmp_path / "parallel")
    total = 240 + 10 + 20
    assert progress[-1] == (total, total) and [d for d, _ in progress] == sorted(d for d, _ in progress)


def test_different_seed_gives_different_images(tmp_path: Path) -> None:
    generate_demo_dataset(tmp_path / "a", TINY)
    generate_demo_dataset(tmp_path / "b", replace(TINY, seed=12))
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    pngs = [name for name in a if name.endswith(".png")]
    assert sum(a[name] != b[name] for name in pngs) == len(pngs)


def test_regeneration_is_skipped_when_current_and_redone_when_not(tmp_path: Path) -> None:
    manifest = generate_demo_dataset(tmp_path, TINY)
    before = manifest.stat().st_mtime_ns
    generate_demo_dataset(tmp_path, TINY)
    assert manifest.stat().st_mtime_ns == before
    (tmp_path / "train" / "train_00000.png").unlink()  # an incomplete set is regenerated
    generate_demo_dataset(tmp_path, TINY)
    assert (tmp_path / "train" / "train_00000.png").is_file()
    generate_demo_dataset(tmp_path, replace(TINY, seed=99))
    assert load_manifest(tmp_path)["config"]["seed"] == 99


def entries(directory: Path, split: str) -> list[dict]:
    return [e for e in load_manifest(directory)["images"] if e["split"] == split]


@pytest.mark.parametrize(("split", "aligned"), [("train", 0.95), ("val", 0.5), ("test", 0.5)])
def test_split_sizes_and_group_proportions(small_demo: Path, split: str, aligned: float) -> None:
    rows = entries(small_demo, split)
    assert len(rows) == getattr(SMALL, f"{split}_size")
    for label in (0, 1):
        of_class = [r for r in rows if r["label"] == label]
        assert len(of_class) == len(rows) // 2
        fraction = np.mean([r["aligned"] for r in of_class])
        assert fraction == pytest.approx(aligned, abs=0.01)
        assert all(r["aligned"] == (r["cue"] == label) and r["group"] in GROUPS for r in of_class)


def test_imported_boxes_on_at_most_ten_percent_of_train_stratified(small_demo: Path) -> None:
    rows = entries(small_demo, "train")
    flagged = [r for r in rows if r["imported_box"]]
    assert 0 < len(flagged) <= 0.1 * len(rows)
    assert sum(r["label"] == 0 for r in flagged) == sum(r["label"] == 1 for r in flagged)
    assert not any(r["imported_box"] for r in entries(small_demo, "test") + entries(small_demo, "val"))


def overlaps(a: list[int], b: tuple[int, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_boxes_inside_image_and_away_from_cue(small_demo: Path) -> None:
    manifest = load_manifest(small_demo)
    size = manifest["image_size"]
    for entry in manifest["images"]:
        x0, y0, x1, y1 = entry["box"]
        assert 0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size
        assert 6 <= max(x1 - x0, y1 - y0) <= 27
        assert not overlaps(entry["box"], tuple(manifest["cue_region"]))


def pixel_signals(directory: Path, entry: dict, cue_region: list[int]) -> tuple[float, float]:
    """(object warmth r-b over saturated box pixels, cue greenness g-(r+b)/2 inside the badge)."""
    image = load_rgb(directory / entry["file"]).astype(np.float64) / 255.0
    x0, y0, x1, y1 = entry["box"]
    patch = image[y0:y1, x0:x1].reshape(-1, 3)
    warmth = patch[:, 0] - patch[:, 2]
    strong = np.abs(warmth) > 0.12  # object pixels; the near-grey background (std ~0.035) stays below
    assert strong.mean() > 0.25, f"{entry['file']}: too few coloured pixels in the box"
    cx0, cy0, cx1, cy1 = cue_region
    badge = image[cy0 + 1 : cy1 - 1, cx0 + 1 : cx1 - 1].reshape(-1, 3)
    return float(np.mean(warmth[strong])), float(np.mean(badge[:, 1] - (badge[:, 0] + badge[:, 2]) / 2))


def test_object_colour_predicts_class_and_cue_colour_predicts_cue(small_demo: Path) -> None:
    cue_region = load_manifest(small_demo)["cue_region"]
    for split in ("train", "test"):
        for entry in entries(small_demo, split):
            warmth, greenness = pixel_signals(small_demo, entry, cue_region)
            assert (warmth > 0.15) if entry["label"] == 0 else (warmth < -0.15), entry["file"]
            cue_class = 0 if greenness > 0 else 1  # green badge goes with "warm" (0), magenta with "cool" (1)
            assert abs(greenness) > 0.4
            assert (cue_class == entry["label"]) == entry["aligned"], entry["file"]


def test_manifest_is_valid_json_with_readable_groups(small_demo: Path) -> None:
    manifest = json.loads((small_demo / "manifest.json").read_text())
    assert manifest["classes"] == ["warm", "cool"]
    assert set(manifest["groups"]) == {"warm/cue-warm", "warm/cue-cool", "cool/cue-warm", "cool/cue-cool"}


def test_demo_records_carry_available_boxes(small_demo: Path) -> None:
    train = demo_records(small_demo, "train")
    flagged = [e["imported_box"] for e in entries(small_demo, "train")]
    assert [bool(r.boxes) for r in train] == flagged
    assert all(len(r.boxes) == 1 for r in demo_records(small_demo, "test"))
    assert all(len(r.boxes) == 1 for r in demo_records(small_demo, "train", boxes="all"))
    keys = [r.key for r in demo_records(small_demo)]
    assert keys == list(range(len(keys)))
    with pytest.raises(ValueError, match="unknown split"):
        demo_records(small_demo, "validation")


def test_image_too_small_for_cue_and_object_fails_with_a_clear_error(tmp_path) -> None:
    import pytest as _pytest

    from core.data import SyntheticConfig, generate_demo_dataset
    from core.data.synthetic_draw import RenderStyle

    config = SyntheticConfig(image_size=48, train_size=40, val_size=2, test_size=2, style=RenderStyle(cue_size=30))
    with _pytest.raises(ValueError, match="no room"):
        generate_demo_dataset(tmp_path, config)
