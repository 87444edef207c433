"""Image/box records → tensors, and the synthetic shortcut demo data set.

- :mod:`core.data.records`: :class:`ImageRecord`, the image loader and :class:`ImageLoadError`.
- :mod:`core.data.dataset`: :class:`GuidanceDataset`, :func:`collate_guidance`, :func:`images_to_batch`.
- :mod:`core.data.synthetic`: :func:`generate_demo_dataset` and :func:`demo_records` (issue 5).
"""

from core.data.dataset import GuidanceDataset, Sample, collate_guidance, images_to_batch
from core.data.records import Box, ImageLoadError, ImageRecord, load_rgb, resize_rgb, scale_boxes
from core.data.synthetic import (
    CLASSES,
    GENERATOR_VERSION,
    GROUPS,
    RenderStyle,
    SyntheticConfig,
    demo_records,
    generate_demo_dataset,
    group_name,
    load_manifest,
)

__all__ = [
    "CLASSES",
    "GENERATOR_VERSION",
    "GROUPS",
    "Box",
    "GuidanceDataset",
    "ImageLoadError",
    "ImageRecord",
    "RenderStyle",
    "Sample",
    "SyntheticConfig",
    "collate_guidance",
    "demo_records",
    "generate_demo_dataset",
    "group_name",
    "images_to_batch",
    "load_manifest",
    "load_rgb",
    "resize_rgb",
    "scale_boxes",
]
