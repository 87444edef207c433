"""Is a project's validation split big enough to judge a run? (core/train/validation.py `VALIDATION_RULE`)

A run's stop decisions and its best checkpoint rest on the validation decision score: the worst group's accuracy when
the images have groups, else accuracy/F1. When fewer than `MIN_JUDGED_IMAGES` images stand behind it (357 images
imported with a 35-image val split), one image is worth several points and the decisions are noise. The check counts
those images with store queries, and finds the `project split --grow` fraction that brings every group (else the
split) to the minimum by drawing the carve's own order (`store.splits.draw_order`), so the fraction it names reaches it.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.train.validation import MIN_JUDGED_IMAGES, too_small_to_judge
from services.catalog import require_project
from services.database import Database
from services.errors import ConflictError
from store.db import session_scope
from store.models import Project
from store.queries import split_group_counts
from store.runs import active_training_run
from store.splits import carve_splits, carved_count, draw_order

log = logging.getLogger(__name__)

MAX_CARVED_FRACTION = 0.5  # never suggest moving more than half of a class's training images out of training
CARVE_SEED = 0  # the seed the suggested command (which leaves --seed out) draws with

Strata = list[list[tuple[int, str | None]]]  # training images per class, in draw order: (image id, group)


@dataclass(frozen=True)
class ValidationCheck:
    """How many validation images a project's decision score rests on and, when too few, the carve that fixes it."""

    project: str
    images: int  #: validation images behind the decision score: the smallest group's when grouped, else the split's
    group: str | None  #: that smallest group; None when the score is not a group's
    grouped: bool  #: the project's images have groups: every group needs `minimum` validation images
    minimum: int  #: core.train.selection.MIN_JUDGED_IMAGES
    too_small: bool  #: core.train.selection.too_small_to_judge(images)
    val_fraction: float | None = None  #: the `--val-fraction` that reaches `minimum`; None when fine or out of reach
    moved: int = 0  #: training images that fraction moves into val
    reached: int = 0  #: the smallest group's (else the split's) validation images after it (at the cap when short)
    short_group: str | None = None  #: out of reach: the group that falls short

    @property
    def command(self) -> str | None:
        """The command line that carves the bigger split, or None when there is nothing (or not enough) to carve."""
        if self.val_fraction is None:
            return None
        grow = " --grow" if self.images else ""  # val has images: the command must be told to add to them
        return f"python app.py project split {shlex.quote(self.project)} --val-fraction {self.val_fraction:g}{grow}"

    @property
    def problem(self) -> str | None:
        """What is wrong, in plain words; None when the split is big enough."""
        if not self.too_small:
            return None
        if not self.images:
            return (f"Project {self.project!r} has no validation images behind its decision score: a run cannot be "
                    "judged (training picks its best epoch and decides when to stop on the validation split).")
        score = "Its decision score, the worst group's accuracy," if self.group is not None else "Its decision score"
        whose = f" of group {self.group!r}" if self.group is not None else ""
        return (f"Project {self.project!r}: the validation split is too small to judge a run. {score} rests on "
                f"{self.images} validation image{'s' if self.images != 1 else ''}{whose}, fewer than {self.minimum}: "
                "one image is worth "
                f"{100 / self.images:.1f} points of it, so one epoch cannot judge a run (the trainer stops on "
                "saturation or collapse only when two epochs in a row show it).")

    @property
    def carve_effect(self) -> str | None:
        """What the carve does, e.g. "moves 15 training images into val (6% of each class's), bringing the split to
        50 validation images"; None when there is no carve to do."""
        if self.val_fraction is None:
            return None
        whom = "the smallest group" if self.grouped else "the split"
        return (f"moves {self.moved} training images into val ({self.val_fraction:.0%} of each class's), bringing "
                f"{whom} to {self.reached} validation images")

    @property
    def shortfall(self) -> str | None:
        """Why carving cannot fix it, and what to do instead; None when it can (or nothing needs fixing)."""
        if not self.too_small or self.val_fraction is not None:
            return None
        whom = f"group {self.short_group!r}" if self.short_group is not None else "the split"
        more = f" of group {self.short_group!r}" if self.short_group is not None else ""
        return (f"Carving cannot fix it: moving {MAX_CARVED_FRACTION:.0%} of each class's training images into val "
                f"would bring {whom} to {self.reached} validation images, not {self.minimum}. Import more "
                f"images{more} into the project.")

    @property
    def warning(self) -> str | None:
        """The whole warning with the command to run; None when the split is big enough."""
        if self.problem is None:
            return None
        fix = f"Carve a bigger one: `{self.command}` {self.carve_effect}." if self.command else self.shortfall
        return f"{self.problem} {fix}"


@dataclass(frozen=True)
class CarvedValidation:
    """What `carve_bigger_validation` did: images moved from train to val, and the check before and after."""

    project: str
    moved: int
    before: ValidationCheck
    after: ValidationCheck


def _support(val_counts: dict[str | None, int]) -> tuple[int, str | None]:
    """Like core.train.selection.decision_support: the smallest group's count when val has grouped images."""
    grouped = {group: n for group, n in val_counts.items() if group is not None and n}
    if grouped:
        smallest = min(sorted(grouped), key=grouped.__getitem__)
        return grouped[smallest], smallest
    return sum(val_counts.values()), None


def _after_carve(units: dict[str | None, int], strata: Strata, fraction: float) -> dict[str | None, int]:
    """Validation images per unit (group, or None for the whole split) once `fraction` of each class has moved."""
    grouped = None not in units
    out = dict(units)
    for members in strata:
        for _, group in members[:carved_count(len(members), fraction)]:
            key = group if grouped else None
            if key in out:  # grouped: an image without a group counts for none
                out[key] += 1
    return out


def _smallest_carve(units: dict[str | None, int], strata: Strata,
                    minimum: int) -> tuple[int | None, dict[str | None, int]]:
    """The smallest whole percentage that brings every unit to `minimum` (None when the cap does not), and the units
    after it (after the cap when short). Binary search: a bigger fraction never moves fewer images of any unit."""
    low, high = 1, round(MAX_CARVED_FRACTION * 100)
    capped = _after_carve(units, strata, high / 100)
    if min(capped.values()) < minimum:
        return None, capped
    while low < high:
        middle = (low + high) // 2
        if min(_after_carve(units, strata, middle / 100).values()) >= minimum:
            high = middle
        else:
            low = middle + 1
    return high, _after_carve(units, strata, high / 100)


def inspect_validation(session: Session, project: Project) -> ValidationCheck:
    """The check of `project` in the caller's transaction (an import checks what it is about to commit)."""
    minimum = MIN_JUDGED_IMAGES
    val_counts = split_group_counts(session, project_id=project.id, split="val")
    images, group = _support(val_counts)
    if not too_small_to_judge(images):
        return ValidationCheck(project.name, images, group, any(g is not None for g in val_counts), minimum, False)
    strata = draw_order(session, project_id=project.id, seed=CARVE_SEED)
    groups = {g for g in val_counts if g is not None} | {g for members in strata for _, g in members if g is not None}
    units = {g: val_counts.get(g, 0) for g in groups} if groups else {None: sum(val_counts.values())}
    percent, after = _smallest_carve(units, strata, minimum)
    short = min(sorted(after, key=str), key=after.__getitem__)
    fraction = None if percent is None else percent / 100
    moved = 0 if fraction is None else sum(carved_count(len(members), fraction) for members in strata)
    return ValidationCheck(project.name, images, group, bool(groups), minimum, True, fraction, moved, after[short],
                           short if percent is None else None)


def check_validation(db: Database, project: str | None) -> ValidationCheck:
    """Whether `project`'s validation split is big enough to judge a run (`check.warning` says what to do when not).
    ValueError for an empty name, NotFoundError for an unknown project."""
    with session_scope(db) as session:
        return inspect_validation(session, require_project(session, project))


def validation_warning(db: Database, project: str | None) -> str | None:
    """The warning for `project` in plain words with the command that fixes it, or None when its split is fine."""
    return check_validation(db, project).warning


def carve_bigger_validation(db: Database, project: str | None) -> CarvedValidation:
    """Move the training images the check names into val (the suggested command, in one transaction).

    Refused (nothing moved) with what to do: ConflictError while a run is queued or running (it is judged on this
    split), ValueError when the split is already big enough or training has too few images to carve from."""
    with session_scope(db) as session:
        row = require_project(session, project)
        run = active_training_run(session, row.id)
        if run is not None:
            raise ConflictError(f"Training run {run.id} of project {row.name!r} is {run.status} and is judged on "
                                "this validation split: wait for it to end (or cancel it), then carve.")
        before = inspect_validation(session, row)
        if not before.too_small:
            raise ValueError(f"The validation split of project {row.name!r} is big enough already: its decision "
                             f"score rests on {before.images} images (at least {before.minimum} are needed).")
        if before.val_fraction is None:
            raise ValueError(before.shortfall)
        moved = carve_splits(session, project_id=row.id, fractions={"val": before.val_fraction}, seed=CARVE_SEED,
                             grow=True)["val"]
        after = inspect_validation(session, row)
    log.info("project %s: carved %d training images into val (fraction %g): decision score on %d images, was %d",
             row.name, moved, before.val_fraction, after.images, before.images)
    return CarvedValidation(row.name, moved, before, after)


__all__ = ["MAX_CARVED_FRACTION", "CarvedValidation", "ValidationCheck", "carve_bigger_validation",
           "check_validation", "inspect_validation", "validation_warning"]
