"""What every generated shortcut data set is sized by: the demo (:mod:`core.data.synthetic`) and the suite
(:mod:`core.data.shortcuts`) both extend :class:`SplitSizes` and record all its fields in their manifests."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SPLITS", "SplitSizes"]

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitSizes:
    """Seed, image side, images per split and how often the cue agrees with the class on the training split.

    Subclasses add their own fields after these (field order is the manifest's key order) and validate them all.
    """

    seed: int = 0
    image_size: int = 64
    train_size: int = 2000
    val_size: int = 400
    test_size: int = 800
    train_aligned: float = 0.95  # share of training images whose cue agrees with the class (0.5: no information)
