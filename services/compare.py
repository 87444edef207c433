"""Two checkpoints of a project side by side: their evaluations measured the same way and per-image changes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from services.catalog import ProjectInfo, image_info, project_info, require_project
from services.checkpoints import (
    CheckpointInfo,
    EvaluationInfo,
    checkpoint_id,
    checkpoint_info,
    default_pair,
    evaluation_info,
    project_checkpoint,
)
from services.database import Database
from services.explain_requests import build_request
from services.explanations import ExplainRequest, Explanation, ExplanationService
from services.runs import run_line
from store.db import session_scope
from store.models_runs import Checkpoint
from store.projects import get_image
from store.queries import image_splits_by_id
from store.runs import active_checkpoint, evaluation_results, evaluations_of

IMAGE_SORTS = ("gain", "regression", "changed")


@dataclass(frozen=True)
class ImageChange:
    """One image evaluated under both checkpoints."""

    image_id: int
    split: str
    epg_before: float | None
    epg_after: float | None
    correct_before: bool
    correct_after: bool
    changed: bool  # the prediction (or its correctness) differs

    @property
    def epg_gain(self) -> float | None:
        """EPG after minus before, when both are known."""
        if self.epg_before is None or self.epg_after is None:
            return None
        return self.epg_after - self.epg_before


@dataclass(frozen=True)
class Comparison:
    """Before and after: the evaluations compared (None: never evaluated), per-image changes sorted as asked,
    and explanation requests (before, after) for the first images."""

    project: ProjectInfo
    before: CheckpointInfo
    after: CheckpointInfo
    evaluation_before: EvaluationInfo | None
    evaluation_after: EvaluationInfo | None
    matched: bool  # both evaluations were measured the same way (split, layer, attribution)
    images: tuple[ImageChange, ...]
    pairs: tuple[tuple[ExplainRequest, ExplainRequest], ...]
    run_note: str = ""  # the run that made "after": its outcome, why it stopped and what it kept ("" for none)


def _matched_evaluations(session: Session, before: Checkpoint, after: Checkpoint, *, with_results: bool
                         ) -> tuple[EvaluationInfo | None, EvaluationInfo | None, bool]:
    """The two checkpoints' evaluations to compare: the newest pair measured the same way (same split, layer and
    attribution; the test split preferred), else each one's newest. The flag says whether they match."""
    newest: dict[tuple[int, tuple[str, str, str]], EvaluationInfo] = {}
    for row in evaluations_of(session, checkpoint_ids=[before.id, after.id], with_results=with_results):
        evaluation = evaluation_info(row)  # oldest first: later ones win
        newest[(evaluation.checkpoint_id, evaluation.measured)] = evaluation
    common = ({key for (owner, key) in newest if owner == before.id}
              & {key for (owner, key) in newest if owner == after.id})
    if common:
        best = max(common, key=lambda k: (k[0] == "test", max(newest[(before.id, k)].id, newest[(after.id, k)].id)))
        return newest[(before.id, best)], newest[(after.id, best)], True

    def latest(owner: int) -> EvaluationInfo | None:
        found = [e for (o, _), e in newest.items() if o == owner]
        return max(found, key=lambda e: e.id) if found else None

    return latest(before.id), latest(after.id), False


def _image_changes(session: Session, before: EvaluationInfo | None, after: EvaluationInfo | None, sort: str
                   ) -> tuple[ImageChange, ...]:
    if before is None or after is None:
        return ()
    a, b = evaluation_results(session, before.id), evaluation_results(session, after.id)
    common = sorted(set(a) & set(b))
    splits = image_splits_by_id(session, image_ids=common)
    changes = [ImageChange(i, splits.get(i, ""), a[i].epg, b[i].epg, a[i].correct, b[i].correct,
                           a[i].predicted_index != b[i].predicted_index or a[i].correct != b[i].correct)
               for i in common]
    return tuple(sorted(changes, key=_sort_key(sort)))


def _sort_key(sort: str) -> Any:
    """Largest gain first ("gain"), largest regression first ("regression"), or changed predictions first and
    then by gain ("changed"); images without an EPG last, ties by image id."""
    if sort not in IMAGE_SORTS:
        raise ValueError(f"unknown sort {sort!r}; choose one of {', '.join(IMAGE_SORTS)}")
    sign = 1.0 if sort == "regression" else -1.0

    def key(change: ImageChange) -> tuple[bool, bool, float, int]:
        gain = change.epg_gain
        first = not change.changed if sort == "changed" else False
        return first, gain is None, sign * gain if gain is not None else 0.0, change.image_id

    return key


def compare_checkpoints(db: Database, project: str | None, before: Any, after: Any, *, sort: str = "gain",
                        pairs: int = 6, data_dir: Path) -> Comparison:
    """Compare two of the project's checkpoints (ids, as form values).

    A side left empty is taken from `default_pair` (what the Compare tab opens on). The summary evaluations are
    each checkpoint's newest measured the same way (`matched`), the per-image
    changes come from evaluations with per-image rows, sorted by `sort` (one of `IMAGE_SORTS`), and the
    first `pairs` images get explanation requests under both checkpoints.
    """
    if before in (None, "") or after in (None, ""):  # a side not picked (yet): the pair Compare opens on
        default_before, default_after = default_pair(db, project)
        before = default_before if before in (None, "") else before
        after = default_after if after in (None, "") else after
    with session_scope(db) as session:
        row = require_project(session, project)
        if before is None or after is None:
            raise ValueError("Pick both checkpoints (before and after) to compare.")
        ck_a = project_checkpoint(session, row, checkpoint_id(before))
        ck_b = project_checkpoint(session, row, checkpoint_id(after))
        eval_a, eval_b, matched = _matched_evaluations(session, ck_a, ck_b, with_results=False)
        rows_a, rows_b, _ = _matched_evaluations(session, ck_a, ck_b, with_results=True)
        images = _image_changes(session, rows_a, rows_b, sort)
        info, info_a, info_b = project_info(session, row), checkpoint_info(ck_a), checkpoint_info(ck_b)
        shown = [image_info(get_image(session, change.image_id), data_dir) for change in images[:pairs]]
    requests = tuple((build_request(info, image, info_a), build_request(info, image, info_b)) for image in shown)
    return Comparison(info, info_a, info_b, eval_a, eval_b, matched, images, requests, run_line(db, info_b.run_id))


HEADLINE_METRICS = (("worst_group_accuracy", "worst-group accuracy"), ("accuracy", "accuracy"), ("f1", "F1"))


def worse_than_active(db: Database, project: str | None, ref: Any, *, margin: float = 0.005) -> str | None:
    """Why activating checkpoint `ref` would make the project worse — "accuracy 0.857 vs 0.971 (−0.114) …" on a
    headline metric (worst-group accuracy, accuracy, F1), measured the same way as the active model's — or None
    (not worse, the same checkpoint, no active model, or never measured the same way: nothing to tell)."""
    with session_scope(db) as session:
        row = require_project(session, project)
        target = project_checkpoint(session, row, checkpoint_id(ref))
        active = active_checkpoint(session, row.id)
        if active is None or active.id == target.id:
            return None
        mine, theirs, matched = _matched_evaluations(session, active, target, with_results=False)
    if not matched or mine is None or theirs is None:
        return None
    drops = [f"{label} {theirs.metrics[key]:.3f} vs {mine.metrics[key]:.3f} "
             f"({theirs.metrics[key] - mine.metrics[key]:+.3f})"
             for key, label in HEADLINE_METRICS
             if isinstance(theirs.metrics.get(key), int | float) and isinstance(mine.metrics.get(key), int | float)
             and theirs.metrics[key] < mine.metrics[key] - margin]
    if not drops:
        return None
    return (f"checkpoint #{target.id} is worse than the active #{active.id} on {mine.measured[0]}: "
            + "; ".join(drops))


def explain_pairs(explanations: ExplanationService, comparison: Comparison, method: str, layer: str
                  ) -> list[tuple[Explanation, Explanation]]:
    """Before|after explanations of the comparison's images: the class the "before" model predicts, explained
    under both checkpoints. One multi-target pass per checkpoint (one forward per image), cached ones reused."""
    if not comparison.pairs:
        return []
    before = explanations.explain_many([a for a, _ in comparison.pairs], method, layer, [None] * len(comparison.pairs))
    classes = [[row[0].key.class_index] for row in before]
    after = explanations.explain_many([b for _, b in comparison.pairs], method, layer, classes)
    return [(a[0], b[0]) for a, b in zip(before, after)]


__all__ = ["HEADLINE_METRICS", "IMAGE_SORTS", "Comparison", "ImageChange", "compare_checkpoints", "explain_pairs",
           "worse_than_active"]
