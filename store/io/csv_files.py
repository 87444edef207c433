"""The CSV files an import may come with: groups (`file,group`) and boxes (`file,label,x0,y0,x1,y1`).

Both name an image by its path relative to the data set folder (a bare file name works when it is unique),
so one CSV serves `import folder`, `import voc` and `import coco`. Every problem names the CSV and its line.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from store.box_history import MAX_BOXES_PER_SAVE
from store.io.checks import pixel_coordinate, utf8_lines
from store.io.names import GROUP_MAX, text_problem
from store.io.plan import ImportPlan, PlannedBox, PlannedImage, Skipped, box_outside, probe_images, round_coord

FILE_COLUMNS = ("file", "filename", "file_name", "path")
GROUP_COLUMNS = ("group",)
LABEL_COLUMNS = ("label", "class")
COORD_COLUMNS = {"x0": ("x0", "xmin"), "y0": ("y0", "ymin"), "x1": ("x1", "xmax"), "y1": ("y1", "ymax")}

GROUPS_EXAMPLE = "file,group\ncat/001.jpg,indoor"
BOXES_EXAMPLE = "file,label,x0,y0,x1,y1\ncat/001.jpg,cat,12,30,180,200"

Row = tuple[dict[str, str], str]  # (logical column -> cell, "name.csv:line")


def read_rows(csv_path: Path, columns: dict[str, tuple[str, ...]], plan: ImportPlan) -> Iterator[Row]:
    """Rows of `csv_path` with the `columns` it must have (logical name -> accepted header names), read one line at
    a time: memory does not grow with the file.

    A problem naming `file:line` for an unreadable file, a missing column or a short row; blank lines are skipped.
    """
    name = csv_path.name
    try:
        handle = open(csv_path, "rb")  # noqa: SIM115  # closed below, after the last row was taken
    except OSError as exc:
        plan.problems.append(f"{name}: cannot be read ({exc.strerror or exc})")
        return
    with handle:
        reader = csv.reader(utf8_lines(handle, name, plan.problems))
        try:
            header = [h.strip().lower() for h in next(reader, [])]
        except csv.Error as exc:
            plan.problems.append(f"{name}:1: unreadable CSV ({exc}); save it as plain CSV")
            return
        index = {logical: next((header.index(c) for c in accepted if c in header), None)
                 for logical, accepted in columns.items()}
        missing = [accepted[0] for logical, accepted in columns.items() if index[logical] is None]
        if missing:
            wanted = ", ".join(f"'{accepted[0]}'" for accepted in columns.values())
            plan.problems.append(f"{name}:1: header must name the columns {wanted} (missing {', '.join(missing)}), "
                                 f"got {header[:8]}")
            return
        last = max(i for i in index.values() if i is not None)
        try:
            for row in reader:
                where = f"{name}:{reader.line_num}"
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) <= last:
                    plan.problems.append(f"{where}: expected {len(header)} fields, got {row[:8]}")
                    continue
                yield {logical: row[i].strip() for logical, i in index.items() if i is not None}, where
        except csv.Error as exc:  # an unclosed quote running past the field size limit
            plan.problems.append(f"{name}:{reader.line_num}: unreadable CSV ({exc}); save it as plain CSV")


class FileIndex:
    """Finds a planned image by its path relative to the data set folder, or by a unique file name."""

    def __init__(self, plan: ImportPlan) -> None:
        self.root = plan.root
        self.by_rel: dict[str, PlannedImage] = {}
        self.by_name: dict[str, list[PlannedImage]] = {}
        for image in plan.images:
            self.by_rel[plan.display(image.file)] = image
            self.by_name.setdefault(image.file.name, []).append(image)

    def find(self, name: str) -> PlannedImage | str:
        """The image, or why there is none (unknown, or a file name several images share)."""
        name = name.replace("\\", "/").removeprefix("./")
        if name in self.by_rel:
            return self.by_rel[name]
        matches = self.by_name.get(name, [])
        if len(matches) == 1:
            return matches[0]
        if matches:  # the folder is not named: a report on a million such rows counts them as one kind
            return f"{name!r} matches {len(matches)} images; use its path in the data set folder (e.g. cat/001.jpg)"
        return f"unknown file {name!r}: no such image under the data set folder"


def assign_groups(plan: ImportPlan, csv_path: Path) -> None:
    """Set each listed image's group; rows naming unknown files are skipped (and reported), a group the database
    cannot store (a NUL, too long) is a problem naming the row."""
    files = FileIndex(plan)
    for cells, where in read_rows(Path(csv_path), {"file": FILE_COLUMNS, "group": GROUP_COLUMNS}, plan):
        found = files.find(cells["file"])
        if isinstance(found, str):
            plan.skipped.append(Skipped(where, found))
            continue
        problem = text_problem(cells["group"], "group", GROUP_MAX)
        if problem is not None:
            plan.problems.append(f"{where}: {problem}")
        else:
            found.group = cells["group"] or None


def add_boxes(plan: ImportPlan, csv_path: Path) -> None:
    """Add the boxes of a `file,label,x0,y0,x1,y1` CSV (pixels of the image as a viewer shows it).

    An unknown or ambiguous file, a blank label, or a coordinate that is not a finite number is a problem
    naming the row, and so is an image given more than `MAX_BOXES_PER_SAVE` boxes. The images are probed first
    (`probe_images`), so a box that is empty or leaves its image, and a row repeating an earlier one, are skipped
    as they are read: a CSV of a million such rows holds no million boxes in memory. Whether a label is a class
    of the project is checked when the plan is applied (`store.io.apply`).
    """
    files = FileIndex(plan)  # before probing: a row naming an unreadable image is not an unknown file
    probe_images(plan)
    columns = {"file": FILE_COLUMNS, "label": LABEL_COLUMNS, **COORD_COLUMNS}
    seen: dict[Path, dict[tuple[str, float, float, float, float], str]] = {}  # image -> box -> its row
    over: Counter[Path] = Counter()
    for cells, where in read_rows(Path(csv_path), columns, plan):
        found = files.find(cells["file"])
        if isinstance(found, str):
            plan.problems.append(f"{where}: {found}")
            continue
        if not cells["label"]:
            plan.problems.append(f"{where}: label is blank; name the class of the box")
            continue
        coords = [pixel_coordinate(cells[c], f"{where}: {c}", plan.problems) for c in COORD_COLUMNS]
        if any(c is None for c in coords) or not found.sha256:  # an unreadable image is skipped, and reported
            continue
        x0, y0, x1, y1 = (round_coord(c) for c in coords)  # type: ignore[arg-type]
        box = PlannedBox(cells["label"], x0, y0, x1, y1, where=f"{where} ({cells['label']})")
        reason = box_outside(box, found.width, found.height)
        boxes = seen.setdefault(found.file, {})
        key = (box.label, x0, y0, x1, y1)
        if reason is None and key in boxes:
            reason = f"the same box as {boxes[key]}"
        if reason is not None:
            plan.skipped.append(Skipped(box.where, reason))
        elif len(boxes) >= MAX_BOXES_PER_SAVE:
            over[found.file] += 1
        else:
            boxes[key] = where
            found.boxes.append(box)
    for file, extra in over.items():
        plan.problems.append(f"{csv_path.name}: {plan.display(file)}: {MAX_BOXES_PER_SAVE + extra:,} boxes on one "
                             f"image is more than the limit of {MAX_BOXES_PER_SAVE} boxes per image; split or thin "
                             "them")
