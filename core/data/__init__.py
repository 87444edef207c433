"""Image/box records → tensors, and the synthetic shortcut demo data set.

- :mod:`core.data.records`: :class:`ImageRecord`, the image loader and :class:`ImageLoadError`.
- :mod:`core.data.dataset`: :class:`GuidanceDataset`, :func:`collate_guidance`, :func:`images_to_batch`.
- :mod:`core.data.synthetic`: :func:`generate_demo_dataset` and :func:`demo_records` (issue 5).

The names are resolved lazily (PEP 562): importing ``core.data.synthetic`` (numpy and OpenCV) must not
import torch, because the demo generator's worker processes start fresh interpreters that import it.
"""

from __future__ import annotations

from core.lazy import lazy_exports

_HOME = {
    "GuidanceDataset": "dataset",
    "Sample": "dataset",
    "collate_guidance": "dataset",
    "images_to_batch": "dataset",
    "Box": "records",
    "ImageLoadError": "records",
    "ImageRecord": "records",
    "load_rgb": "records",
    "resize_rgb": "records",
    "scale_boxes": "records",
    "CLASSES": "synthetic",
    "GENERATOR_VERSION": "synthetic",
    "GROUPS": "synthetic",
    "RenderStyle": "synthetic",
    "SyntheticConfig": "synthetic",
    "demo_records": "synthetic",
    "generate_demo_dataset": "synthetic",
    "group_name": "synthetic",
    "load_manifest": "synthetic",
}

__all__ = sorted(_HOME)
__getattr__, __dir__ = lazy_exports(__name__, {name: f"core.data.{module}" for name, module in _HOME.items()})
