"""Parse a folder with one sub-folder per class (optionally under train/val/test) into a single-label plan.

Two layouts:

- `DIR/<split>/<class>/<image>` (split one of train, val, test): the folder's own split is kept;
  `--val-fraction`/`--test-fraction` may carve a split the folder lacks out of `train/`.
- `DIR/<class>/<image>`: a split is made per class (stratified) and seeded, 10% val and 10% test unless
  told otherwise, or every image goes to one `split`.

The split is decided by a hash of (seed, path under DIR), so it is the same on every run and an image
added later does not move the others between splits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from store.io.checks import Confinement
from store.io.csv_files import add_boxes, assign_groups
from store.io.plan import IMAGE_EXTENSIONS, ImportPlan, PlannedImage, Skipped

SPLITS = ("train", "val", "test")
DEFAULT_VAL_FRACTION = 0.1
DEFAULT_TEST_FRACTION = 0.1


@dataclass(frozen=True)
class SplitRule:
    """How images get their split. `split`: all in one split (flat layout only). Fractions None: the default
    (flat layout: 10% / 10%; split layout: the folders as they are)."""

    split: str | None = None
    val_fraction: float | None = None
    test_fraction: float | None = None
    seed: int = 0

    def check(self) -> None:
        """ValueError naming the option when the rule is not usable."""
        if self.split is not None and (self.val_fraction is not None or self.test_fraction is not None):
            raise ValueError("--split puts every image in one split; drop --val-fraction/--test-fraction, or drop "
                             "--split to have a split made")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"--split {self.split!r}: choose one of {', '.join(SPLITS)}")
        for flag, value in (("--val-fraction", self.val_fraction), ("--test-fraction", self.test_fraction)):
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"{flag} {value:g} is outside [0, 1): give the fraction of each class's images, "
                                 "e.g. 0.1")
        if (self.val_fraction or 0.0) + (self.test_fraction or 0.0) >= 1.0:
            raise ValueError("--val-fraction plus --test-fraction must leave images for training (sum below 1)")
        if self.seed < 0:
            raise ValueError(f"--seed {self.seed} must be 0 or more")


def _layout(root: Path) -> tuple[bool, list[tuple[str, Path]]]:
    """(split layout?, [(split, class dir)]): `root/<class>` or `root/<split>/<class>`."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subdirs and all(p.name in SPLITS for p in subdirs):
        return True, [(split.name, d) for split in subdirs for d in sorted(split.iterdir())
                      if d.is_dir() and not d.name.startswith(".")]
    return False, [("train", d) for d in subdirs]


def _class_images(root: Path, class_dirs: list[tuple[str, Path]], confinement: Confinement,
                  plan: ImportPlan) -> None:
    """One planned image per image file; class folders without any are reported, files outside `root` refused."""
    found: dict[str, list[str]] = {}  # class -> its folders that hold no image
    for split, class_dir in class_dirs:
        files = [f for f in sorted(class_dir.rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS]
        found.setdefault(class_dir.name, [])
        plan.class_origins.setdefault(class_dir.name, f"class folder {class_dir.relative_to(root).as_posix()}/")
        if not files:
            found[class_dir.name].append(f"{class_dir.relative_to(root).as_posix()}/")
        for file in files:
            refusal = confinement.refusal(file)
            if refusal is not None:
                plan.problems.append(f"{plan.display(file)}: {refusal}")
            plan.images.append(PlannedImage(file=file, split=split, labels=[class_dir.name]))
    with_images = {image.labels[0] for image in plan.images}
    for name, empty in sorted(found.items()):
        if name not in with_images:
            plan.skipped.append(Skipped(f"class {name!r}", f"no images in {', '.join(empty)}; class not created"))


def _draw_order(image: PlannedImage, plan: ImportPlan, seed: int) -> str:
    # surrogateescape: a file name that is not UTF-8 gets its place too (the import then refuses it by name)
    return hashlib.sha256(f"{seed}:{plan.display(image.file)}".encode("utf-8", "surrogateescape")).hexdigest()


def _carve(plan: ImportPlan, pool: list[PlannedImage], fractions: dict[str, float], seed: int) -> None:
    """Move `fraction` of each class's images in `pool` (seeded, stratified) to each split of `fractions`.

    A split asked for that rounding leaves empty gets one image from the largest class that can spare one.
    """
    by_class: dict[str, list[PlannedImage]] = {}
    for image in pool:
        by_class.setdefault(image.labels[0], []).append(image)
    for images in by_class.values():
        images.sort(key=lambda image: _draw_order(image, plan, seed))
    taken = {name: 0 for name in by_class}
    for split, fraction in fractions.items():
        moved = 0
        for name, images in by_class.items():
            count = min(int(len(images) * fraction + 0.5), len(images) - taken[name] - 1)  # half rounds up
            for image in images[taken[name]:taken[name] + max(0, count)]:
                image.split = split
            taken[name] += max(0, count)
            moved += max(0, count)
        spare = [name for name in by_class if len(by_class[name]) - taken[name] >= 2]
        if fraction > 0 and moved == 0 and spare:
            name = max(spare, key=lambda n: len(by_class[n]) - taken[n])
            by_class[name][taken[name]].split = split
            taken[name] += 1


def _split(plan: ImportPlan, split_layout: bool, rule: SplitRule) -> None:
    if split_layout:
        if rule.split is not None:
            raise ValueError(f"{plan.root} has train/val/test sub-folders, so the images keep those splits; drop "
                             "--split")
        present = {image.split for image in plan.images}
        fractions = {split: value for split, value in (("val", rule.val_fraction), ("test", rule.test_fraction))
                     if value is not None}
        clash = sorted(split for split in fractions if split in present)
        if clash:
            raise ValueError(f"{plan.root} already has a {clash[0]}/ folder; drop --{clash[0]}-fraction (it only "
                             f"carves a split the folder lacks out of train/)")
        if fractions:
            _carve(plan, [image for image in plan.images if image.split == "train"], fractions, rule.seed)
            plan.notes.append(f"carved {', '.join(f'{s} {v:.0%}' for s, v in fractions.items())} of each class "
                              f"out of train/ (seed {rule.seed})")
        elif "val" not in present:
            plan.notes.append("no val/ folder: training picks its best epoch on a val split, so import into a new "
                              "project with --val-fraction 0.1 to carve one out of train/ (images already in a "
                              "project keep their split)")
        return
    if rule.split is not None:
        for image in plan.images:
            image.split = rule.split
        plan.notes.append(f"every image in split {rule.split!r} (--split)")
        return
    val = DEFAULT_VAL_FRACTION if rule.val_fraction is None else rule.val_fraction
    test = DEFAULT_TEST_FRACTION if rule.test_fraction is None else rule.test_fraction
    _carve(plan, plan.images, {"val": val, "test": test}, rule.seed)
    plan.notes.append(f"split made per class with seed {rule.seed}: val {val:.0%}, test {test:.0%}, the rest train "
                      "(change with --val-fraction, --test-fraction, --seed or --split)")


def parse_folder(path: str | Path, *, groups_csv: str | Path | None = None, boxes_csv: str | Path | None = None,
                 split_rule: SplitRule | None = None, allow_outside: bool = False,
                 name_paths: bool = True) -> ImportPlan:
    """Read `path/<class>/<image>` (or `path/<split>/<class>/<image>`); classes sorted by name.

    An image that resolves (symlinks followed) outside `path` is a problem unless `allow_outside`; its message
    names where it really is unless `name_paths` is False (see `Confinement`).
    ValueError (nothing parsed) for a missing folder, no images, or a `split_rule` that does not fit the layout.
    """
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    rule = split_rule or SplitRule()
    rule.check()
    plan = ImportPlan(task="single_label", classes=[], images=[], root=root)
    split_layout, class_dirs = _layout(root)
    _class_images(root, class_dirs, Confinement(root, allow_outside=allow_outside, name_paths=name_paths),
                  plan)
    if not plan.images:
        raise ValueError(f"{root} has no images in class sub-folders (expected {root}/<class>/<image> or "
                         f"{root}/<split>/<class>/<image>)")
    _split(plan, split_layout, rule)
    if groups_csv is not None:
        assign_groups(plan, Path(groups_csv))
    if boxes_csv is not None:
        add_boxes(plan, Path(boxes_csv))
    plan.classes = sorted({image.labels[0] for image in plan.images})
    return plan
