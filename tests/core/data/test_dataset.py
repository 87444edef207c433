"""GuidanceDataset, collate_guidance, images_to_batch and ImageLoadError."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.data import (
    GuidanceDataset,
    ImageLoadError,
    ImageRecord,
    collate_guidance,
    demo_records,
    images_to_batch,
    load_rgb,
)


def write_image(
    path: Path, width: int = 100, height: int = 50, box: tuple[int, int, int, int] = (10, 5, 60, 25)
) -> Path:
    """Black image with a white rectangle at ``box`` (x0, y0, x1, y1, end-exclusive)."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = 255
    Image.fromarray(pixels).save(path)
    return path


def record(path: Path, **changes: object) -> ImageRecord:
    fields: dict = {"path": path, "labels": (1,), "boxes": ((10.0, 5.0, 60.0, 25.0),), "box_labels": (1,), "key": 7}
    fields.update(changes)
    return ImageRecord(**fields)


def test_sample_shapes_dtypes_and_box_scaling(tmp_path: Path) -> None:
    rec = record(write_image(tmp_path / "a.png"), group=2)
    sample = GuidanceDataset([rec], num_classes=3, image_size=32)[0]
    assert sample["image"].shape == (3, 32, 32) and sample["image"].dtype == torch.float32
    assert sample["image"].min() >= 0.0 and sample["image"].max() <= 1.0
    assert sample["target"].tolist() == [0.0, 1.0, 0.0]
    assert sample["label"].dtype == torch.long and sample["label"].item() == 1
    assert sample["group"].item() == 2 and sample["key"].item() == 7
    # x scales by 32/100, y by 32/50
    torch.testing.assert_close(sample["boxes"], torch.tensor([[3.2, 3.2, 19.2, 16.0]]))
    assert sample["box_labels"].tolist() == [1]
    # the white rectangle lands inside the scaled box: bright well inside, dark well outside
    image = sample["image"].mean(0)
    assert image[6:13, 6:16].min() > 0.9
    assert image[20:, :].max() < 0.1 and image[:, 22:].max() < 0.1


def test_multi_label_targets_and_missing_group(tmp_path: Path) -> None:
    rec = record(write_image(tmp_path / "a.png"), labels=(0, 2), boxes=(), box_labels=())
    sample = GuidanceDataset([rec], num_classes=3, image_size=16, multi_label=True)[0]
    assert sample["target"].tolist() == [1.0, 0.0, 1.0]
    assert sample["group"].item() == -1
    assert sample["boxes"].shape == (0, 4) and sample["box_labels"].shape == (0,)


def test_validation_errors_are_actionable(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    with pytest.raises(ValueError, match="num_classes"):
        GuidanceDataset([record(path, labels=(5,))], num_classes=3, image_size=16)
    with pytest.raises(ValueError, match="single-label"):
        GuidanceDataset([record(path, labels=(0, 1))], num_classes=3, image_size=16)
    with pytest.raises(ValueError, match="box labels"):
        record(path, box_labels=())
    with pytest.raises(ValueError, match="x1 > x0"):
        record(path, boxes=((5.0, 5.0, 5.0, 9.0),))


def test_collate_pads_boxes_and_marks_valid(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    records = [
        record(path, boxes=(), box_labels=()),
        record(path, boxes=((0.0, 0.0, 50.0, 25.0), (50.0, 25.0, 100.0, 50.0)), box_labels=(0, 2)),
        record(path),
    ]
    dataset = GuidanceDataset(records, num_classes=3, image_size=20)
    batch = collate_guidance([dataset[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 20, 20) and batch["target"].shape == (3, 3)
    assert batch["label"].shape == batch["group"].shape == batch["key"].shape == (3,)
    assert batch["boxes"].shape == (3, 2, 4)
    assert batch["box_valid"].tolist() == [[False, False], [True, True], [True, False]]
    assert batch["box_labels"].tolist() == [[-1, -1], [0, 2], [1, -1]]
    torch.testing.assert_close(batch["boxes"][1, 1], torch.tensor([10.0, 10.0, 20.0, 20.0]))
    assert batch["boxes"][~batch["box_valid"]].abs().sum() == 0


def test_collate_without_any_boxes_gives_k_zero(tmp_path: Path) -> None:
    rec = record(write_image(tmp_path / "a.png"), boxes=(), box_labels=())
    dataset = GuidanceDataset([rec, rec], num_classes=3, image_size=8)
    batch = collate_guidance([dataset[0], dataset[1]])
    assert batch["boxes"].shape == (2, 0, 4) and batch["box_valid"].shape == (2, 0)


def test_corrupt_and_missing_images_raise_image_load_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    truncated = write_image(tmp_path / "truncated.png", 200, 200)
    truncated.write_bytes(truncated.read_bytes()[:80])
    for path in (corrupt, truncated, tmp_path / "missing.png", tmp_path):
        dataset = GuidanceDataset([record(path)], num_classes=3, image_size=16)
        with pytest.raises(ImageLoadError, match="cannot load image") as info:
            dataset[0]
        assert str(path) in str(info.value) and info.value.path == path
        clone = pickle.loads(pickle.dumps(info.value))  # survives DataLoader workers
        assert str(clone) == str(info.value)


def test_a_decompression_bomb_is_refused_with_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "big.png", 200, 200)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100 // 2)  # Pillow refuses above twice this
    dataset = GuidanceDataset([record(path)], num_classes=3, image_size=16)
    with pytest.raises(ImageLoadError, match=r"too large to decode safely.*reduce it"):
        dataset[0]


def test_cache_keeps_decoded_images(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    dataset = GuidanceDataset([record(path)], num_classes=3, image_size=16, cache=True)
    dataset.preload()
    assert dataset.cache_bytes == 3 * 16 * 16
    first = dataset[0]["image"]
    first.mul_(0)  # a caller mutating a sample must not poison the cache
    path.unlink()
    torch.testing.assert_close(dataset[0]["image"].amax(), torch.tensor(1.0))
    with pytest.raises(ValueError, match="cache=True"):
        GuidanceDataset([record(path)], num_classes=3, image_size=16).preload()


def test_images_to_batch_matches_dataset_and_leaves_inputs_alone(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    rgb = load_rgb(path)
    grey, rgba = rgb[:, :, 0].copy(), np.concatenate([rgb, np.full_like(rgb[:, :, :1], 7)], axis=2)
    copies = [a.copy() for a in (rgb, grey, rgba)]
    batch = images_to_batch([rgb, grey, rgba], image_size=24)
    assert batch.shape == (3, 3, 24, 24) and batch.dtype == torch.float32
    expected = GuidanceDataset([record(path)], num_classes=3, image_size=24)[0]["image"]
    for row in batch:
        torch.testing.assert_close(row, expected)
    assert all(np.array_equal(a, b) for a, b in zip((rgb, grey, rgba), copies))
    with pytest.raises(ValueError, match="uint8"):
        images_to_batch([rgb.astype(np.float32)], image_size=24)


def test_records_are_not_mutated(small_demo: Path) -> None:
    records = demo_records(small_demo, "val")[:8]
    snapshot = [(r.path, r.labels, r.boxes, r.box_labels, r.group, r.key) for r in records]
    dataset = GuidanceDataset(records, num_classes=2, image_size=32, cache=True)
    collate_guidance([dataset[i] for i in range(len(dataset))])
    assert [(r.path, r.labels, r.boxes, r.box_labels, r.group, r.key) for r in records] == snapshot


def test_demo_set_through_the_dataset(small_demo: Path) -> None:
    records = demo_records(small_demo, "test")[:16]
    dataset = GuidanceDataset(records, num_classes=2, image_size=64)
    batch = collate_guidance([dataset[i] for i in range(len(dataset))])
    assert batch["image"].shape == (16, 3, 64, 64) and batch["box_valid"].all()
    boxes = torch.tensor([r.boxes[0] for r in records])
    torch.testing.assert_close(batch["boxes"][:, 0], boxes)  # 64 → 64: boxes unchanged
    assert set(batch["group"].tolist()) <= {0, 1, 2, 3}
