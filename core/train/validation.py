"""When a validation split is big enough to judge a run (torch-free: the import command and the UI use it too)."""

from __future__ import annotations

from typing import Any

__all__ = ["MIN_JUDGED_IMAGES", "VALIDATION_RULE", "chance_level", "decision_support", "too_small_to_judge"]

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


def chance_level(labels: list[int], accuracy: float) -> dict[str, float] | None:
    """Whether a single-label validation `accuracy` is within noise of chance: of always answering the commonest
    class of `labels` (the validation images' classes), plus two standard errors of a proportion over them. The
    figures (`majority`, `threshold`, `images`) when it is, None when it is clearly above (or nothing to judge)."""
    if not labels:
        return None
    majority = max(labels.count(c) for c in set(labels)) / len(labels)
    threshold = majority + 2 * (majority * (1 - majority) / len(labels)) ** 0.5
    if accuracy >= threshold:
        return None
    return {"majority": round(majority, 4), "threshold": round(threshold, 4), "images": len(labels)}
