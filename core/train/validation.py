"""When a validation split is big enough to judge a run (torch-free: the import command and the UI use it too)."""

from __future__ import annotations

from typing import Any

__all__ = ["MIN_JUDGED_IMAGES", "VALIDATION_RULE", "decision_support", "too_small_to_judge"]

# A validation split is too small to judge a run from one epoch when the images behind its decision score — the
# smallest group's when the data has groups, else the whole split's — number fewer than this: one image is then
# worth more than 2 points of the score. On such a split the adaptive schedule declares neither "saturated" nor
# "collapsed" from one epoch (it takes two in a row), and the app warns and offers `project split`.
MIN_JUDGED_IMAGES = 50
VALIDATION_RULE = (f"a validation split whose decision score rests on fewer than {MIN_JUDGED_IMAGES} images (the "
                   "smallest group's, else the whole split's) is too small to judge a run from one epoch: "
                   "saturation or collapse must show on two epochs in a row")


def decision_support(metrics: dict[str, Any]) -> int:
    """How many validation images the decision score rests on: the smallest group's when the evaluation has
    groups (`group_sizes`), else all of them (`n_images`)."""
    sizes = [int(n) for n in (metrics.get("group_sizes") or {}).values() if n]
    if metrics.get("worst_group_accuracy") is not None and sizes:
        return min(sizes)
    return int(metrics.get("n_images") or 0)


def too_small_to_judge(images: int) -> bool:
    """True when a decision score resting on `images` images cannot decide a stop from one epoch."""
    return images < MIN_JUDGED_IMAGES
