"""Re-splitting a project: carve validation/test images out of its training split (stratified, seeded)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.models import Image, ImageLabel


def carved_count(stratum: int, fraction: float, taken: int = 0) -> int:
    """How many of a stratum's `stratum` images `carve_splits` moves for `fraction`, after `taken` went to
    another split: the fraction rounded half up, always leaving one image in the source split."""
    return max(0, min(int(stratum * fraction + 0.5), stratum - taken - 1))


def draw_order(session: Session, *, project_id: int, seed: int = 0,
               source: str = "train") -> list[list[tuple[int, str | None]]]:
    """The project's `source` images per stratum (the image's first label; unlabelled images form their own), each
    stratum in the order `carve_splits` takes them: `(image id, group)`. So a caller can tell what a carve would
    move without moving anything."""
    first_label = (select(func.min(ImageLabel.class_id)).where(ImageLabel.image_id == Image.id)
                   .correlate(Image).scalar_subquery())
    rows = session.execute(select(Image.id, Image.path, Image.group, first_label).where(
        Image.project_id == project_id, Image.split == source)).all()
    strata: dict[int | None, list[tuple[str, int, str | None]]] = {}
    for image_id, path, group, label in rows:
        order = hashlib.sha256(f"{seed}:{path}".encode()).hexdigest()
        strata.setdefault(label, []).append((order, image_id, group))
    return [[(image_id, group) for _, image_id, group in sorted(members)] for members in strata.values()]


def carve_splits(session: Session, *, project_id: int, fractions: Mapping[str, float], seed: int = 0,
                 source: str = "train", grow: bool = False) -> dict[str, int]:
    """Move `fractions[split]` of each class's `source` images into `split` (e.g. {"val": 0.1}); returns how
    many images each split received.

    Stratified by the image's first label (unlabelled images form their own stratum); the draw is a hash of
    (seed, path), so the same call on the same data moves the same images. Every stratum keeps at least one
    image in `source`. A target split that already has images is refused (ValueError) unless `grow`: moving
    images into a split people have evaluated on changes its figures, so only an explicit request does it.
    """
    for split, fraction in fractions.items():
        if split == source or not 0.0 < fraction < 1.0:
            raise ValueError(f"--{split}-fraction must be between 0 and 1 and name a split other than {source!r}")
        present = session.scalar(select(func.count()).select_from(Image).where(
            Image.project_id == project_id, Image.split == split))
        if present and not grow:
            raise ValueError(f"the project already has {present} images in {split!r}; it is left as it is "
                             "(--grow adds to it)")
    moved: dict[str, list[int]] = {split: [] for split in fractions}
    for members in draw_order(session, project_id=project_id, seed=seed, source=source):
        taken = 0
        for split, fraction in fractions.items():
            count = carved_count(len(members), fraction, taken)
            moved[split] += [image_id for image_id, _ in members[taken:taken + count]]
            taken += count
    for split, ids in moved.items():
        if ids:
            session.execute(update(Image).where(Image.id.in_(ids)).values(split=split))
    session.flush()
    return {split: len(ids) for split, ids in moved.items()}
