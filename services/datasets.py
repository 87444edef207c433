"""Store rows → engine records: a project's images as `core.data.ImageRecord`s and `TrainData`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.data import ImageRecord
from core.train.loop import TrainData
from services.settings import Settings
from store.models import Project
from store.paths import resolve_image_path
from store.projects import list_classes
from store.queries import TrainingExample, image_groups, training_examples


def group_names(session: Session, project_id: int) -> list[str]:
    """The project's worst-group analysis groups, sorted; their positions are the group indices."""
    return image_groups(session, project_id=project_id)


def to_record(example: TrainingExample, settings: Settings, groups: dict[str, int]) -> ImageRecord:
    """One database image as an engine record (path resolved against the data dir)."""
    return ImageRecord(
        path=resolve_image_path(example.path, settings.data_dir),
        labels=example.labels,
        boxes=tuple(b[:4] for b in example.boxes),
        box_labels=tuple(b[4] for b in example.boxes),
        group=groups.get(example.group) if example.group else None,
        key=example.image_id,
        width=example.width,
        height=example.height,
    )


def split_records(session: Session, settings: Settings, project: Project, split: str,
                  groups: list[str] | None = None) -> list[ImageRecord]:
    """Every image of `split` with its labels and live boxes."""
    index = {name: i for i, name in enumerate(groups if groups is not None else group_names(session, project.id))}
    return [to_record(e, settings, index) for e in training_examples(session, project.id, split)]


def project_train_data(session: Session, settings: Settings, project: Project, *, val_split: str = "val") -> TrainData:
    """Training and validation records of a project with its classes and groups.

    Raises ValueError with what to do when the project has no training images or no validation split.
    """
    groups = group_names(session, project.id)
    train = split_records(session, settings, project, "train", groups)
    val = split_records(session, settings, project, val_split, groups)
    if not train:
        raise ValueError(f"project {project.name!r} has no images in split 'train'; import or assign some first")
    if not val:
        raise ValueError(f"project {project.name!r} has no images in split {val_split!r}; the trainer selects models "
                         "on it — put some images in that split (e.g. import with --split val)")
    classes = [c.name for c in list_classes(session, project.id)]
    return TrainData(train=train, val=val, classes=classes, image_size=project.image_size,
                     multi_label=project.task == "multi_label", group_names=groups)
