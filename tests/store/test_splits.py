"""Re-splitting (store/splits.py) and the counts the validation-size check reads: `draw_order` is exactly what
`carve_splits` takes, so a caller can tell what a carve would move; `grow` adds to a split that has images."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

import store
from store.queries import split_group_counts
from store.splits import carve_splits, carved_count, draw_order


def _project(session: Session) -> int:
    project = store.create_project(session, name="split", task="single_label", classes=["cat", "dog"])
    inputs = [store.ImageInput(f"{i}.jpg", f"{i:064x}", 10, 10, split="val" if i < 4 else "train",
                               group=None if i % 5 == 0 else "light" if i % 2 else "dark") for i in range(40)]
    for i, (image, _) in enumerate(store.add_images(session, project_id=project.id, images=inputs)):
        store.set_image_labels(session, image_id=image.id, class_names=["cat" if i % 3 else "dog"])
    session.flush()
    return project.id


def test_split_group_counts_counts_images_without_a_group_under_none(session: Session) -> None:
    project_id = _project(session)
    assert split_group_counts(session, project_id=project_id, split="val") == {None: 1, "dark": 1, "light": 2}
    train = split_group_counts(session, project_id=project_id, split="train")
    assert sum(train.values()) == 36 and train[None] == 7
    assert split_group_counts(session, project_id=project_id, split="test") == {}


@pytest.mark.parametrize("seed", [0, 3])
def test_draw_order_is_what_carve_splits_takes_and_grow_adds_to_val(session: Session, seed: int) -> None:
    project_id = _project(session)
    order = draw_order(session, project_id=project_id, seed=seed)
    assert sorted(len(members) for members in order) == [12, 24]  # dog: every 3rd image, cat: the others
    expected = {image_id for members in order for image_id, _ in members[:carved_count(len(members), 0.25)]}
    with pytest.raises(ValueError, match=r"already has 4 images in 'val'.*--grow adds to it"):
        carve_splits(session, project_id=project_id, fractions={"val": 0.25}, seed=seed)
    assert carve_splits(session, project_id=project_id, fractions={"val": 0.25}, seed=seed, grow=True) == {"val": 9}
    after = split_group_counts(session, project_id=project_id, split="val")
    assert sum(after.values()) == 4 + len(expected) == 13
    in_val = {image_id for members in draw_order(session, project_id=project_id, seed=seed, source="val")
              for image_id, _ in members}
    assert expected <= in_val  # exactly the images draw_order put first
