"""What to annotate next, and which model proposes its box.

- `next_needing_box`: the next training image without a box, in plain (path) order, wrapping round.
- `annotation_queue`: the training images without a box ranked where a box helps most: the groups the active
  model gets wrong most often first (the cue-conflicting ones), then its wrong predictions, then the lowest EPG,
  from its newest evaluation with per-image results; in path order when it has none.
- `proposal_model`: the checkpoint "Propose from explanation" uses: the project's best guided checkpoint (written
  by a training run with `lam > 0` that had boxes; best = highest validation worst-group accuracy, then accuracy,
  then EPG), else the active model, which has not been guided and shows where the model looks, not the object.

Every function opens and owns one transaction and returns frozen dataclasses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.catalog import require_image, require_project
from services.checkpoints import project_checkpoint
from services.database import Database
from store.boxes import QueueRow, guided_checkpoints, next_unannotated_image, ranked_unannotated_images
from store.db import session_scope
from store.errors import NotFoundError
from store.runs import active_checkpoint, latest_evaluation_id

TRAIN_SPLIT = "train"
QUEUE_LIMIT = 200


@dataclass(frozen=True)
class QueueItem:
    """A training image without a box, with why it is where it is in the queue."""

    image_id: int
    path: str
    group: str | None
    correct: bool | None  # the active model's verdict in the evaluation used (None: not evaluated)
    epg: float | None
    group_error_rate: float | None  # how often that evaluation got the image's group wrong

    @property
    def reason(self) -> str:
        """A short line: 'group cool/g: 67% wrong · predicted wrong · EPG 0.21'."""
        parts = []
        if self.group_error_rate is not None:
            parts.append(f"group {self.group}: {self.group_error_rate:.0%} wrong")
        if self.correct is not None:
            parts.append("predicted wrong" if not self.correct else "predicted right")
        if self.epg is not None:
            parts.append(f"EPG {self.epg:.2f}")
        return " · ".join(parts) or "not evaluated"


@dataclass(frozen=True)
class AnnotationQueue:
    """Training images without a box, where a box helps most first."""

    items: tuple[QueueItem, ...]
    evaluation_id: int | None  # the active model's evaluation the ranking came from (None: plain path order)

    @property
    def image_ids(self) -> list[int]:
        """The queue's image ids in order."""
        return [item.image_id for item in self.items]


@dataclass(frozen=True)
class ProposalModel:
    """The checkpoint proposals come from; `guided` is False for the active, never-guided (shortcut) model."""

    checkpoint_id: int
    guided: bool
    description: str


def next_needing_box(db: Database, project: str | None, after: int | float | None = None) -> int | None:
    """The id of the next training image without a box after image `after` (by path, wrapping round; from the
    first when `after` is None), or None when every training image has one."""
    with session_scope(db) as session:
        row = require_project(session, project)
        after_path = require_image(session, row, after).path if after else None
        return next_unannotated_image(session, project_id=row.id, split=TRAIN_SPLIT, after_path=after_path)


def annotation_queue(db: Database, project: str | None, *, limit: int = QUEUE_LIMIT) -> AnnotationQueue:
    """Up to `limit` training images without a box, ranked where a box helps most (see the module notes).

    Per-image verdicts come from the active model's newest evaluation of the training split; the group error
    rates from that one, or else from its newest evaluation of any split (groups are shared across splits).
    """
    with session_scope(db) as session:
        row = require_project(session, project)
        active = active_checkpoint(session, row.id)
        results_id = groups_id = None
        if active is not None:
            results_id = latest_evaluation_id(session, checkpoint_id=active.id, split=TRAIN_SPLIT)
            groups_id = results_id or latest_evaluation_id(session, checkpoint_id=active.id)
        rows = ranked_unannotated_images(session, project_id=row.id, split=TRAIN_SPLIT, results_id=results_id,
                                         groups_id=groups_id, limit=limit)
        return AnnotationQueue(tuple(_item(r) for r in rows), groups_id)


def _item(row: QueueRow) -> QueueItem:
    return QueueItem(row.image_id, row.path, row.group, row.correct, row.epg,
                     None if row.group_error_rate is None else float(row.group_error_rate))


def _number(metrics: Mapping[str, Any], key: str) -> float:
    value = metrics.get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else -math.inf


def proposal_model(db: Database, project: str | None) -> ProposalModel:
    """The best guided checkpoint of the project, else its active model (NotFoundError when it has neither)."""
    with session_scope(db) as session:
        row = require_project(session, project)
        guided = guided_checkpoints(session, row.id)
        if guided:
            best, run = max(guided, key=lambda pair: tuple(_number(pair[0].metrics or {}, key) for key in
                                                             ("worst_group_accuracy", "accuracy", "epg")))
            epoch = (best.metrics or {}).get("epoch")
            where = f"run {run.id}" + (f", epoch {epoch}" if epoch is not None else "")
            return ProposalModel(best.id, True, f"the guided model #{best.id} ({where})")
        try:
            active = project_checkpoint(session, row, None)
        except NotFoundError:
            raise NotFoundError(f"Project {row.name!r} has no model to propose boxes with: register or activate "
                                "a checkpoint in the Models tab, or draw the box by hand.") from None
        return ProposalModel(active.id, False, f"the active model #{active.id}")


__all__ = ["AnnotationQueue", "ProposalModel", "QueueItem", "annotation_queue", "next_needing_box",
           "proposal_model"]
