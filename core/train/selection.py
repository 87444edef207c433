"""Model selection: the Pareto front of evaluated checkpoints, kept as files (SCIENCE.md §5)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.metrics import pareto_front

log = logging.getLogger(__name__)


def selection_point(metrics: dict[str, Any]) -> tuple[float, float, float]:
    """(accuracy or F1, EPG, IoU) of an evaluation, missing values as 0."""
    primary = metrics.get("f1") if metrics.get("multi_label") else metrics.get("accuracy")
    return (float(primary or 0.0), float(metrics.get("epg") or 0.0), float(metrics.get("iou") or 0.0))


@dataclass
class ParetoArchive:
    """Checkpoint files of one run; files that fall off the Pareto front are deleted."""

    bin_width: float = 0.005
    entries: list[dict[str, Any]] = field(default_factory=list)  # every evaluated checkpoint, in order
    front: list[dict[str, Any]] = field(default_factory=list)

    def add(self, path: Path, epoch: int, metrics: dict[str, Any]) -> list[Path]:
        """Record a new checkpoint; return (and delete) the files no longer on the front."""
        self.entries.append({"path": str(path), "epoch": epoch, "metrics": metrics})
        keep = set(pareto_front([selection_point(e["metrics"]) for e in self.entries], bin_width=self.bin_width))
        kept_paths = {self.entries[i]["path"] for i in keep}
        removed = []
        for entry in self.front + self.entries[-1:]:
            if entry["path"] not in kept_paths and Path(entry["path"]).exists():
                Path(entry["path"]).unlink()
                removed.append(Path(entry["path"]))
        self.front = [self.entries[i] for i in sorted(keep)]
        if removed:
            log.debug("dropped checkpoints off the Pareto front: %s", [p.name for p in removed])
        return removed

    def best(self, base_primary: float | None, tolerance: float) -> dict[str, Any] | None:
        """The front point with the highest EPG whose accuracy/F1 is within `tolerance` of the base's.

        With no base (or none within tolerance), the front point with the highest accuracy/F1.
        """
        if not self.front:
            return None
        if base_primary is not None:
            ok = [e for e in self.front if selection_point(e["metrics"])[0] >= base_primary - tolerance]
            if ok:
                return max(ok, key=lambda e: (selection_point(e["metrics"])[1], -e["epoch"]))
        return max(self.front, key=lambda e: (selection_point(e["metrics"])[0], -e["epoch"]))
