"""Model selection: the Pareto front of evaluated checkpoints, kept as files, and the decision-first rule that
picks the run's best (docs/science.md §5 and §8).

The front is over (worst-group accuracy when the data has groups, accuracy or F1, EPG, IoU), so no checkpoint
that is best on a decision metric is ever deleted. The best checkpoint is chosen **on decisions first**
(`SELECTION_RULE`): EPG can reach 0.98 while accuracy is 0.73, and a rule that maximises EPG within a tolerance of
the *base* accuracy rewards EPG alone when that base is at chance (issue 13).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.metrics import pareto_front

log = logging.getLogger(__name__)

SELECTION_RULE = ("decisions first: highest validation worst-group accuracy (accuracy/F1 when the data has no groups); "
                  "checkpoints within the selection tolerance of it count as equal and the highest accuracy/F1 "
                  "among them, then the highest EPG among those within the tolerance again, wins; earliest on ties")

def selection_point(metrics: dict[str, Any]) -> tuple[float, float, float]:
    """(accuracy or F1, EPG, IoU) of an evaluation, missing values as 0."""
    primary = metrics.get("f1") if metrics.get("multi_label") else metrics.get("accuracy")
    return (float(primary or 0.0), float(metrics.get("epg") or 0.0), float(metrics.get("iou") or 0.0))


def decision_point(metrics: dict[str, Any]) -> tuple[float, float, float]:
    """(decision score, accuracy or F1, EPG): the decision score is the worst-group accuracy when the evaluation
    has groups, else accuracy/F1. Missing values count as 0."""
    primary, epg, _ = selection_point(metrics)
    worst = metrics.get("worst_group_accuracy")
    return (primary if worst is None else float(worst), primary, epg)


def _front_point(metrics: dict[str, Any]) -> tuple[float, ...]:
    worst = metrics.get("worst_group_accuracy")
    point = selection_point(metrics)
    return point if worst is None else (float(worst), *point)


def best_by_decisions(entries: list[dict[str, Any]], tolerance: float) -> dict[str, Any] | None:
    """The entry (`{"metrics", "epoch", ...}`) `SELECTION_RULE` picks, or None for none."""
    candidates = list(entries)
    if not candidates:
        return None
    for index in range(3):  # decision score, then accuracy/F1, then EPG: each keeps those within tolerance of the top
        top = max(decision_point(e["metrics"])[index] for e in candidates)
        margin = tolerance if index < 2 else 0.0
        candidates = [e for e in candidates if decision_point(e["metrics"])[index] >= top - margin - 1e-12]
    return min(candidates, key=lambda e: e["epoch"])


@dataclass
class ParetoArchive:
    """Checkpoint files of one run; files that fall off the Pareto front are deleted."""

    bin_width: float = 0.005
    entries: list[dict[str, Any]] = field(default_factory=list)  # every evaluated checkpoint, in order
    front: list[dict[str, Any]] = field(default_factory=list)

    def add(self, path: Path, epoch: int, metrics: dict[str, Any]) -> list[Path]:
        """Record a new checkpoint; return (and delete) the files no longer on the front."""
        self.entries.append({"path": str(path), "epoch": epoch, "metrics": metrics})
        points = [_front_point(e["metrics"]) for e in self.entries]
        if len({len(p) for p in points}) > 1:  # groups appeared or vanished mid-run: compare without them
            points = [selection_point(e["metrics"]) for e in self.entries]
        keep = set(pareto_front(points, bin_width=self.bin_width))
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

    def best(self, tolerance: float) -> dict[str, Any] | None:
        """The front checkpoint `SELECTION_RULE` picks (None when nothing was evaluated)."""
        return best_by_decisions(self.front, tolerance)
