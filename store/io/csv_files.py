"""The CSV files an import may come with: groups (`file,group`) and boxes (`file,label,x0,y0,x1,y1`).

Both name an image by its path relative to the data set folder (a bare file name works when it is unique),
so one CSV serves `import folder`, `import voc` and `import coco`. Every problem names the CSV and its line.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from store.io.checks import decode_utf8, pixel_coordinate
from store.io.plan import ImportPlan, PlannedBox, PlannedImage, Skipped, round_coord

FILE_COLUMNS = ("file", "filename", "file_name", "path")
GROUP_COLUMNS = ("group",)
LABEL_COLUMNS = ("label", "class")
COORD_COLUMNS = {"x0": ("x0", "xmin"), "y0": ("y0", "ymin"), "x1": ("x1", "xmax"), "y1": ("y1", "ymax")}

GROUPS_EXAMPLE = "file,group\ncat/001.jpg,indoor"
BOXES_EXAMPLE = "file,label,x0,y0,x1,y1\ncat/001.jpg,cat,12,30,180,200"

Row = tuple[dict[str, str], str]  # (logical column -> cell, "name.csv:line")


def read_rows(csv_path: Path, columns: dict[str, tuple[str, ...]], plan: ImportPlan) -> list[Row]:
    """Rows of `csv_path` with the `columns` it must have (logical name -> accepted header names).

    A problem naming `file:line` for an unreadable file, a missing column or a short row; blank lines are skipped.
    """
    name = csv_path.name
    try:
        raw = csv_path.read_bytes()
    except OSError as exc:
        plan.problems.append(f"{csv_path}: cannot be read ({exc.strerror or exc})")
        return []
    text = decode_utf8(raw, name, plan.problems)
    if text is None:
        return []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        plan.problems.append(f"{name}:1: unreadable CSV ({exc}); save it as plain CSV")
        return []
    index = {logical: next((header.index(c) for c in accepted if c in header), None)
             for logical, accepted in columns.items()}
    missing = [accepted[0] for logical, accepted in columns.items() if index[logical] is None]
    if missing:
        wanted = ", ".join(f"'{accepted[0]}'" for accepted in columns.values())
        plan.problems.append(f"{name}:1: header must name the columns {wanted} (missing {', '.join(missing)}), "
                             f"got {header}")
        return []
    rows: list[Row] = []
    last = max(i for i in index.values() if i is not None)
    try:
        for row in reader:
            where = f"{name}:{reader.line_num}"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= last:
                plan.problems.append(f"{where}: expected {len(header)} fields, got {row[:8]}")
                continue
            rows.append(({logical: row[i].strip() for logical, i in index.items() if i is not None}, where))
    except csv.Error as exc:  # a NUL byte, an unclosed quote running past the field size limit
        plan.problems.append(f"{name}:{reader.line_num}: unreadable CSV ({exc}); save it as plain CSV")
    return rows


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
        if matches:
            return f"{name!r} matches {len(matches)} images; use the path under {self.root}"
        return f"unknown file {name!r}: no such image under {self.root}"


def assign_groups(plan: ImportPlan, csv_path: Path) -> None:
    """Set each listed image's group; rows naming unknown files are skipped (and reported)."""
    files = FileIndex(plan)
    for cells, where in read_rows(Path(csv_path), {"file": FILE_COLUMNS, "group": GROUP_COLUMNS}, plan):
        found = files.find(cells["file"])
        if isinstance(found, str):
            plan.skipped.append(Skipped(where, found))
        else:
            found.group = cells["group"] or None


def add_boxes(plan: ImportPlan, csv_path: Path) -> None:
    """Add the boxes of a `file,label,x0,y0,x1,y1` CSV (pixels of the image as a viewer shows it).

    An unknown or ambiguous file, a blank label, or a coordinate that is not a finite number is a problem
    naming the row; whether a label is a class of the project, and whether a box lies inside its image, is
    checked when the plan is applied (`store.io.apply`).
    """
    files = FileIndex(plan)
    columns = {"file": FILE_COLUMNS, "label": LABEL_COLUMNS, **COORD_COLUMNS}
    for cells, where in read_rows(Path(csv_path), columns, plan):
        found = files.find(cells["file"])
        if isinstance(found, str):
            plan.problems.append(f"{where}: {found}")
            continue
        if not cells["label"]:
            plan.problems.append(f"{where}: label is blank; name the class of the box")
            continue
        coords = [pixel_coordinate(cells[c], f"{where}: {c}", plan.problems) for c in COORD_COLUMNS]
        if any(c is None for c in coords):
            continue
        x0, y0, x1, y1 = (round_coord(c) for c in coords)  # type: ignore[arg-type]
        found.boxes.append(PlannedBox(cells["label"], x0, y0, x1, y1, where=f"{where} ({cells['label']})"))
