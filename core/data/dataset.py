"""Records → tensors: the dataset, its collate function and the single-image batch helper.

Every image is resized to a square ``image_size`` with a plain bilinear resize (no cropping, no aspect
preservation, no augmentation — the reference guidance recipe uses none); boxes are scaled with it.
Pixel values are float32 in ``[0, 1]``; any input encoding happens inside the model.

Demo epochs are tiny and JPEG/PNG decoding dominates on CPU, so ``cache=True`` keeps the decoded,
resized uint8 images in memory (``3·S²`` bytes per image; 12 KiB at 64²). The cache is per process:
with DataLoader workers each worker fills its own copy, so prefer ``num_workers=0`` plus the cache
for small data sets, or call :meth:`GuidanceDataset.preload` before forking workers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from core.data.records import ImageRecord, load_rgb, resize_rgb, scale_boxes

__all__ = ["GuidanceDataset", "Sample", "collate_guidance", "images_to_batch"]

log = logging.getLogger(__name__)

Sample = dict[str, torch.Tensor]


class GuidanceDataset(Dataset[Sample]):
    """A list of :class:`ImageRecord` as tensors for training and evaluation.

    Each sample is a dict:
        ``image``: ``(3, S, S)`` float32 in [0, 1];
        ``target``: ``(C,)`` float32 multi-hot of ``labels``;
        ``label``: ``()`` long, the first label (-1 when the image has none);
        ``boxes``: ``(K, 4)`` float32 ``x0 y0 x1 y1`` in resized pixels;
        ``box_labels``: ``(K,)`` long;
        ``group``: ``()`` long (-1 when none);
        ``key``: ``()`` long, the record's key.

    Args:
        records: the images; not modified.
        num_classes: C.
        image_size: S, the side of the square model input.
        multi_label: False requires exactly one label per image (single-label classification).
        cache: keep decoded, resized uint8 images in memory after the first load.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        num_classes: int,
        image_size: int,
        multi_label: bool = False,
        cache: bool = False,
    ) -> None:
        if num_classes < 1 or image_size < 1:
            raise ValueError(f"num_classes and image_size must be positive, got {num_classes}, {image_size}")
        self.records = tuple(records)
        self.num_classes = num_classes
        self.image_size = image_size
        self.multi_label = multi_label
        self.cache = cache
        self._images: dict[int, tuple[torch.Tensor, int, int]] = {}  # index -> ((3,S,S) uint8, W, H)
        for record in self.records:
            self._check(record)

    def _check(self, record: ImageRecord) -> None:
        bad = [c for c in (*record.labels, *record.box_labels) if not 0 <= c < self.num_classes]
        if bad:
            raise ValueError(
                f"record {record.key} ({record.path}) has class indices {bad} outside [0, {self.num_classes}); "
                "did you pass the right num_classes?"
            )
        if not self.multi_label and len(record.labels) != 1:
            raise ValueError(
                f"record {record.key} ({record.path}) has {len(record.labels)} labels but the data set is "
                "single-label; give exactly one label or use multi_label=True"
            )

    def __len__(self) -> int:
        return len(self.records)

    def load_image(self, index: int) -> tuple[torch.Tensor, int, int]:
        """The resized image of record ``index`` as ``(3, S, S)`` uint8, plus its original width and height."""
        cached = self._images.get(index)
        if cached is not None:
            return cached
        original = load_rgb(self.records[index].path)
        height, width = original.shape[:2]
        resized = resize_rgb(original, self.image_size)
        entry = (torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1).contiguous(), width, height)
        if self.cache:
            self._images[index] = entry
        return entry

    def preload(self) -> None:
        """Decode every image into the cache now (e.g. before forking DataLoader workers)."""
        if not self.cache:
            raise ValueError("preload() needs cache=True")
        for index in range(len(self)):
            self.load_image(index)
        log.info("cached %d images at %d² (%.1f MiB)", len(self), self.image_size, self.cache_bytes / 2**20)

    @property
    def cache_bytes(self) -> int:
        """Memory held by the image cache."""
        return sum(image.numel() for image, _, _ in self._images.values())

    def __getitem__(self, index: int) -> Sample:
        record = self.records[index]
        image, width, height = self.load_image(index)
        target = torch.zeros(self.num_classes, dtype=torch.float32)
        if record.labels:
            target[list(record.labels)] = 1.0
        boxes = scale_boxes(record.boxes, width, height, self.image_size)
        return {
            "image": image.float().div_(255.0),
            "target": target,
            "label": torch.tensor(record.labels[0] if record.labels else -1, dtype=torch.long),
            "boxes": torch.from_numpy(boxes),
            "box_labels": torch.tensor(record.box_labels, dtype=torch.long).reshape(-1),
            "group": torch.tensor(-1 if record.group is None else record.group, dtype=torch.long),
            "key": torch.tensor(record.key, dtype=torch.long),
        }


def collate_guidance(samples: Sequence[Sample]) -> Sample:
    """Batch samples of :class:`GuidanceDataset`, padding boxes to the batch's largest box count K.

    Returns:
        ``image (B,3,S,S)``, ``target (B,C)``, ``label (B,)``, ``group (B,)``, ``key (B,)``,
        ``boxes (B,K,4)`` (padding rows are zeros), ``box_labels (B,K)`` (padding -1) and
        ``box_valid (B,K)`` bool (True for real boxes). K may be 0.
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    batch = {name: torch.stack([s[name] for s in samples]) for name in ("image", "target", "label", "group", "key")}
    counts = [s["boxes"].shape[0] for s in samples]
    size = (len(samples), max(counts))
    boxes = torch.zeros((*size, 4), dtype=torch.float32)
    box_labels = torch.full(size, -1, dtype=torch.long)
    box_valid = torch.zeros(size, dtype=torch.bool)
    for row, (sample, count) in enumerate(zip(samples, counts)):
        boxes[row, :count] = sample["boxes"]
        box_labels[row, :count] = sample["box_labels"]
        box_valid[row, :count] = True
    batch.update(boxes=boxes, box_labels=box_labels, box_valid=box_valid)
    return batch


def images_to_batch(images: Sequence[np.ndarray], image_size: int) -> torch.Tensor:
    """Model input from in-memory images (the UI's single-image path), resized like the dataset does.

    Args:
        images: uint8 arrays, each ``(H, W, 3)`` RGB, ``(H, W, 4)`` RGBA (alpha dropped) or ``(H, W)`` grey.
        image_size: S.

    Returns:
        ``(B, 3, S, S)`` float32 in [0, 1]. The inputs are not modified.
    """
    if len(images) == 0:
        raise ValueError("images_to_batch needs at least one image")
    resized = [resize_rgb(_as_rgb(image), image_size) for image in images]
    batch = torch.from_numpy(np.stack(resized))  # (B, S, S, 3) uint8, a fresh array
    return batch.permute(0, 3, 1, 2).float().div_(255.0)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 view or copy of a grey, RGB or RGBA uint8 array."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}; convert with (x * 255).round().astype(np.uint8)")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return np.ascontiguousarray(image[:, :, :3])
    raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")
