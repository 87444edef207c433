"""Re-splitting a project: carve validation/test images out of its training split (stratified, seeded)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.models import Image, ImageLabel


def carve_splits(session: Session, *, project_id: int, fractions: Mapping[str, float], seed: int = 0,
                 source: str = "train") -> dict[str, int]:
    """Move `fractions[split]` of each class's `source` images into `split` (e.g. {"val": 0.1}); returns how
    many images each split received.

    Stratified by the image's first label (unlabelled images form their own stratum); the draw is a hash of
    (seed, path), so the same call on the same data moves the same images. Every stratum keeps at least one
    image in `source`. A target split that already has images is refused (ValueError): moving images into a
    split people have evaluated on would change its figures silently.
    """
    for split, fraction in fractions.items():
        if split == source or not 0.0 < fraction < 1.0:
            raise ValueError(f"--{split}-fraction must be between 0 and 1 and name a split other than {source!r}")
        present = session.scalar(select(func.count()).select_from(Image).where(
            Image.project_id == project_id, Image.split == split))
        if present:
            raise ValueError(f"the project already has {present} images in {split!r}; it is left as it is")
    first_label = (select(func.min(ImageLabel.class_id)).where(ImageLabel.image_id == Image.id)
                   .correlate(Image).scalar_subquery())
    rows = session.execute(select(Image.id, Image.path, first_label).where(
        Image.project_id == project_id, Image.split == source)).all()
    strata: dict[int | None, list[tuple[str, int]]] = {}
    for image_id, path, label in rows:
        order = hashlib.sha256(f"{seed}:{path}".encode()).hexdigest()
        strata.setdefault(label, []).append((order, image_id))
    moved: dict[str, list[int]] = {split: [] for split in fractions}
    for members in strata.values():
        members.sort()
        taken = 0
        for split, fraction in fractions.items():
            count = max(0, min(int(len(members) * fraction + 0.5), len(members) - taken - 1))
            moved[split] += [image_id for _, image_id in members[taken:taken + count]]
            taken += count
    for split, ids in moved.items():
        if ids:
            session.execute(update(Image).where(Image.id.in_(ids)).values(split=split))
    session.flush()
    return {split: len(ids) for split, ids in moved.items()}
