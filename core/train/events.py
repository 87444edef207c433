"""Progress events the trainer sends to its caller (CLI progress bar, database row, UI curves)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class TrainingCancelled(Exception):
    """Raised inside the loop when the caller asked to stop; finished checkpoints stay."""


@dataclass(frozen=True)
class TrainEvent:
    """One progress report.

    kind: "start" | "step" | "eval" | "checkpoint" | "done". `progress` is in [0, 1];
    `losses` and `metrics` are plain floats (JSON-safe). An "eval" event's `checkpoint` is the file
    written for that epoch, or None when the epoch fell off the Pareto front at once (its file is deleted).
    """

    kind: str
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps_total: int = 0
    progress: float = 0.0
    eta_s: float | None = None
    losses: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return asdict(self)
