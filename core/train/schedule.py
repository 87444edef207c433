"""The adaptive one-click schedule (issue 13): how long to train, how fast and when to stop, decided on validation.

Why: the demo's constants (2 epochs at lr 1e-4) re-weight a feature the baseline already has, but change no decision
on a set whose true feature the baseline never learned (docs/science.md §8). How long and how fast to train is a
property of the data, so it is decided from the validation evaluation after every epoch, on **decisions**
(`core.train.selection.decision_point`: worst-group accuracy when groups exist, else accuracy/F1), never on EPG.

Rules, applied after each epoch's evaluation (`AdaptiveSchedule.after_epoch`):

1. *Improved*: the decision score rose by more than `min_delta` over the best so far (the base model counts): keep
   going at this learning rate.
2. *Collapsed*: the decision score fell more than `collapse` below the best, or accuracy/F1 did: roll back to the
   best weights, divide the learning rate by √`factor` and never raise it above that again.
3. *Stalled* (neither): below the ceiling (`factor` × the starting rate, at most `LR_CEILING` = 1e-3), multiply
   the learning rate by `factor` (the model is not moving: the feature must be taught, which takes bigger steps);
   at the ceiling, stop after `patience` (3) stalled epochs in a row there — a feature being learned (a shape)
   moves the worst group in steps, not every epoch. A score at `saturated` stops at once instead — there is
   nothing left to gain.
4. *Not trained yet*: a fresh model (new, or just converted) is not "stalled" before it is trained — before its
   best accuracy/F1 has come half the way from its start to 1 (0.5 → 0.75 for two balanced classes): a shape is
   learned after a plateau, and on 357 real digits patience stopped such a model at 0.64 where 20 epochs reach
   0.97 (issue 23). Patience does not end its run; after 2 × `patience` stalls in a row at the ceiling the rate is
   lowered by √`factor` (a rate too high for a model from scratch also stalls), twice at most. Only the budget or
   the cap ends such a run (reported as not improved when no epoch beat the start).
5. *Small validation split* (`core.train.validation.VALIDATION_RULE`): when the decision score rests on fewer than
   `MIN_JUDGED_IMAGES` images, "saturated" and "collapsed" must show on two epochs in a row — one image is worth
   more than 2 points there.
6. *Budget*: stop when the time spent plus one more epoch (its measured duration) would pass `budget_s`
   (0: no limit). `max_epochs` is a hard cap: an explicit `--epochs N` is respected.
7. At least `min_epochs` (3) epochs run, or the cap when it is lower, before the patience or budget rule may stop
   the run: a run is judged on three evaluations, and a short explicit run (`--epochs 2`) runs exactly what was
   asked, whatever the machine's load. Saturation is the exception (rule 3): waiting longer on a score that
   cannot rise only doubled the demo's wait (issue 23); a cap below `min_epochs` still runs in full.

The run then keeps the checkpoint `SELECTION_RULE` picks. Torch-free: the trainer applies the decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.train.selection import decision_point
from core.train.validation import decision_support, too_small_to_judge

__all__ = ["LR_CEILING", "AdaptiveSchedule", "Decision"]

LR_CEILING = 1e-3  # a stall raises the rate up to this (or the user's own rate when higher), never beyond


@dataclass(frozen=True)
class Decision:
    """What the trainer does next: `stop` (with `reason`), the learning rate of the next epoch, and whether to
    restore the best weights first (`rollback`)."""

    stop: bool
    lr: float
    rollback: bool = False
    reason: str = ""


@dataclass
class AdaptiveSchedule:
    """Decides, after each validation evaluation, the next learning rate and whether to stop (module docstring)."""

    lr: float
    max_epochs: int
    budget_s: float = 0.0
    factor: float = 10.0
    max_lr: float | None = None  # default: lr × factor, at most LR_CEILING
    min_delta: float = 0.01
    collapse: float = 0.15
    saturated: float = 0.99
    min_epochs: int = 3
    patience: int = 3  # stalled epochs in a row at the ceiling before the run stops
    fresh: bool = False  # a new or just-converted model: it must be trained (rule 4) before a stall can end the run
    stalls_at_ceiling: int = 0
    trained: bool = True  # set from `fresh` by `start`: False until accuracy/F1 is half way from its start to 1
    start_primary: float = 0.0  # the starting model's accuracy/F1
    lowered: int = 0  # times a fresh model's rate was lowered after stalling at the top (rule 4)
    best_score: tuple[float, float, float] | None = None
    best_epoch: int = 0
    epochs: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_lr is None:  # raise at most ×factor and never past LR_CEILING (Adam's usual top rate)
            self.max_lr = max(self.lr, min(self.lr * self.factor, LR_CEILING))

    def start(self, base_metrics: dict[str, Any]) -> None:
        """The starting model's validation metrics: the score to beat (epoch 0)."""
        self.best_score = decision_point(base_metrics) if base_metrics else None
        self.start_primary = self.best_score[1] if self.best_score else 0.0
        self.trained = not self.fresh

    def after_epoch(self, metrics: dict[str, Any], *, elapsed_s: float, epoch_s: float) -> Decision:
        """Decide after one epoch: `metrics` its validation evaluation, `elapsed_s` the run's time so far,
        `epoch_s` this epoch's duration including its evaluation."""
        self.epochs += 1
        score = decision_point(metrics)
        best = self.best_score
        support = decision_support(metrics)
        small = support > 0 and too_small_to_judge(support)
        if best is None or score[0] > best[0] + self.min_delta:
            outcome = "improved"
        elif score[0] < best[0] - self.collapse or score[1] < best[1] - self.collapse:
            outcome = "collapsed"
        else:
            outcome = "stalled"
        seen = outcome  # before rule 5
        previous = self.log[-1]["seen"] if self.log else ""
        if small and outcome == "collapsed" and previous != "collapsed":
            outcome = "stalled"  # rule 5: one epoch on a small split cannot tell a collapse from noise
        if score[1] >= self.start_primary + (1.0 - self.start_primary) / 2:  # rule 4: half way to 1
            self.trained = True
        if outcome == "improved" or (best is not None and score[0] >= best[0] - self.min_delta
                                     and (score[1], score[2]) > (best[1], best[2])):
            self.best_score, self.best_epoch = score, self.epochs
        saturated = score[0] >= self.saturated and (
            not small or (bool(self.log) and self.log[-1]["score"] >= self.saturated))
        decision = self._decide(outcome, score, saturated)
        if not decision.stop:
            if self.epochs >= self.max_epochs:
                decision = Decision(True, decision.lr, False, f"reached the epoch cap ({self.max_epochs})")
            elif self.budget_s and elapsed_s + epoch_s > self.budget_s and self.epochs >= self._floor():
                decision = Decision(True, decision.lr, False,
                                    f"time budget: {elapsed_s:.0f} s spent, another epoch takes ~{epoch_s:.0f} s "
                                    f"of {self.budget_s:.0f} s")
        self.log.append({"epoch": self.epochs, "outcome": outcome, "seen": seen, "lr": self.lr,
                         "next_lr": decision.lr, "score": round(score[0], 4), "small_split": small,
                         "stop": decision.stop, "reason": decision.reason})
        self.lr = decision.lr
        return decision

    def _floor(self) -> int:
        """Epochs that always run: `min_epochs`, or the cap when it is lower (an explicit `--epochs 2` runs 2)."""
        return min(self.min_epochs, self.max_epochs)

    def _decide(self, outcome: str, score: tuple[float, float, float], saturated: bool) -> Decision:
        may_stop = self.epochs >= self._floor()
        assert self.max_lr is not None
        at_ceiling = self.lr * (1 + 1e-9) >= self.max_lr
        self.stalls_at_ceiling = self.stalls_at_ceiling + 1 if outcome == "stalled" and at_ceiling else 0
        if outcome == "improved" and not saturated:
            return Decision(False, self.lr)
        if outcome == "collapsed":
            self.max_lr = self.lr / self.factor ** 0.5
            return Decision(False, self.lr / self.factor ** 0.5, rollback=True,
                            reason=f"validation fell to {score[0]:.3f}: back to epoch {self.best_epoch}")
        if saturated:  # rule 3: nothing left to gain (two epochs in a row on a small split)
            stop = self.epochs >= (1 if self.max_epochs >= self.min_epochs else self.max_epochs)
            return Decision(stop, self.lr, reason=f"validation decision score saturated ({score[0]:.3f})"
                            if stop else "")
        if not at_ceiling:
            return Decision(False, min(self.lr * self.factor, self.max_lr))
        if not self.trained:  # rule 4: learning to begin with, not converged
            return self._retry_lower() if self.stalls_at_ceiling >= 2 * self.patience else Decision(False, self.lr)
        if may_stop and self.stalls_at_ceiling >= self.patience:
            return Decision(True, self.lr, reason=f"no improvement in {self.stalls_at_ceiling} epochs at the highest "
                                                  "learning rate")
        return Decision(False, self.lr)

    def _retry_lower(self) -> Decision:
        """Rule 4: a fresh model stalled at the top rate: try a lower one (twice at most), never stop for it."""
        self.stalls_at_ceiling = 0
        if self.lowered >= 2:
            return Decision(False, self.lr)
        self.lowered += 1
        self.max_lr = self.lr / self.factor ** 0.5
        return Decision(False, self.max_lr, reason=f"not learning yet at lr {self.lr:.0e}: trying {self.max_lr:.0e}")
