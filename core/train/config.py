"""The training configuration: one frozen dataclass, the one schema of every training setting.

Each field carries its own metadata (`Setting`: label, help, choices, bounds, where it is shown). From
it the `train` command builds its flags (`services/commands/train.py`), the UI builds its advanced
settings form (`ui/tabs/finetune.py`), and `TrainConfig.__post_init__` validates — so a setting is
written once. The config travels to the training process inside its run row, never as command-line
strings, and is stored inside every checkpoint. Torch-free on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

from core import methods

__all__ = ["FREEZE_NORM_CHOICES", "LAYER_NAMES", "LOSS_NAMES", "METHOD_CHOICES", "SCHEDULE_CHOICES", "TARGET_NAMES",
           "Setting", "TrainConfig", "default_of", "settings"]

LOSS_NAMES: tuple[str, ...] = tuple(methods.LOSSES)
LAYER_NAMES: tuple[str, ...] = tuple(methods.LAYERS)
TARGET_NAMES: tuple[str, ...] = tuple(methods.TARGETS)
# "auto": the model's own explanation if it is a B-cos net, else Input×Gradient (core.methods.default_method)
METHOD_CHOICES: tuple[str, ...] = ("auto", *(m.name for m in methods.METHODS.values() if m.guidable))
FREEZE_NORM_CHOICES: tuple[str, ...] = ("auto", "yes", "no")
SCHEDULE_CHOICES: tuple[str, ...] = ("adaptive", "fixed")
_LEGACY_FREEZE_NORM = {True: "yes", False: "no"}


@dataclass(frozen=True)
class Setting:
    """What the command line and the UI need to know about one training setting.

    `minimum`/`maximum` are inclusive unless `exclusive_minimum`; `cli` False: no flag (the global
    option or the run itself sets it); `hidden`: a flag left out of `--help` (tests, smoke runs);
    `ui` False: not in the advanced-settings form; `step`: shown there as a slider.
    """

    label: str
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    cli: bool = True
    hidden: bool = False
    ui: bool = True
    step: float | None = None  # a slider in the UI form with this step (else a number box)

    def check(self, name: str, value: Any) -> None:
        """Raise ValueError saying what is allowed when `value` breaks this setting's rules."""
        if self.choices and value not in self.choices:
            raise ValueError(f"{name}={value!r} is not one of {', '.join(self.choices)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        if value != value:  # NaN compares unequal to itself
            raise ValueError(f"{name} must be a number, not NaN")
        low_ok = self.minimum is None or (value > self.minimum if self.exclusive_minimum else value >= self.minimum)
        if not low_ok or (self.maximum is not None and value > self.maximum):
            raise ValueError(f"{name}={value} is out of range: {self.describe_range()}")

    def describe_range(self) -> str:
        """The allowed range in words, e.g. "> 0 and ≤ 1"."""
        parts = []
        if self.minimum is not None:
            parts.append(f"{'>' if self.exclusive_minimum else '≥'} {self.minimum:g}")
        if self.maximum is not None:
            parts.append(f"≤ {self.maximum:g}")
        return " and ".join(parts) or "any number"


def setting(default: Any, label: str, help: str, **rules: Any) -> Any:
    """A dataclass field with its `Setting` metadata."""
    return field(default=default, metadata={"setting": Setting(label=label, help=help, **rules)})


@dataclass(frozen=True)
class TrainConfig:
    """Guided fine-tuning settings (Rao et al., ICCV 2023, with the choices of this project).

    `lam` weighs the *sum* of per-image localisation losses over the annotated images of a batch
    (docs/science.md §4). `target="contrast"` guides `logit_t - max_{c≠t} logit_c` instead of `logit_t`
    (docs/science.md §7); `"auto"` is the contrast for single-label data, where it won the demo comparison,
    and the class logit (the paper's recipe) for multi-label data.

    `freeze_norm="yes"` keeps batch-norm layers on their running statistics while fine-tuning, so the
    network trained is the network evaluated (measured on the demo: train-set EPG 0.95 with batch
    statistics, 0.01 with running statistics). With `"no"` (training from scratch, or a freshly converted
    model) the running statistics are re-estimated on the training data before each evaluation. `"auto"`
    (default) is "no" when the base checkpoint is fresh (made by `model new`, never trained: its config says
    `"fresh": true`) and "yes" otherwise; `resolved(fresh=...)` decides it.
    """

    loss: str = setting("energy", "Loss", "localisation loss", choices=LOSS_NAMES)
    attribution: str = setting("auto", "Attribution", "explanation method guided (auto: B-cos for B-cos models, "
                               "else Input×Gradient)", choices=METHOD_CHOICES)
    # demo evidence: with the contrast target, as good as input and ~1.5x faster (bench/RESULTS.md)
    layer: str = setting("mid2", "Layer", "layer the explanation is taken at", choices=LAYER_NAMES)
    target: str = setting("auto", "Guided target", "guided score: class logit, contrast, or auto = contrast for "
                          "single-label and class for multi-label projects", choices=TARGET_NAMES)
    # demo evidence (bench/RESULTS.md); the paper's 1e-3 barely moves a 10%-boxed run
    lam: float = setting(0.5, "λ (localisation weight)", "weight of the summed localisation loss (0: no boxes: "
                         "no localisation loss and no counterfactuals)",
                         minimum=0.0, maximum=1e4)
    # the shortcut suite (issue 13, bench/suite.py, bench/RESULTS.md): from 1e-3 the adaptive schedule teaches a
    # feature the baseline lacks; the demo's old 1e-4 for 2 epochs moved explanations but changed no decision on shape
    lr: float = setting(1e-3, "Learning rate", "learning rate (Adam); the adaptive schedule's starting rate",
                        minimum=0.0, exclusive_minimum=True, maximum=1.0)
    # adaptive won on every benchmark of the suite against the old fixed 2 epochs (bench/RESULTS.md "suite")
    schedule: str = setting("adaptive", "Schedule", "adaptive: learning rate and stopping decided on the validation "
                            "split (worst group, else accuracy/F1) within the time budget, epochs a cap; fixed: "
                            "exactly `epochs` epochs at `lr`", choices=SCHEDULE_CHOICES)
    budget_s: float = setting(300.0, "Time budget (s)", "adaptive schedule: no epoch starts that would end after this "
                              "many seconds of training (0: no limit; the first 3 epochs, or the cap, always run)",
                              minimum=0.0, maximum=1e7)
    epochs: int = setting(30, "Epochs", "epochs: the count of a fixed schedule, the cap of the adaptive one",
                          minimum=1, maximum=10_000)
    batch_size: int = setting(64, "Batch size", "batch size", minimum=1, maximum=4096)
    annotated_fraction: float = setting(1.0, "Annotated fraction used", "fraction of the training images with "
                                        "boxes whose boxes are used", minimum=0.0, exclusive_minimum=True,
                                        maximum=1.0, step=0.01)
    # issue 13: without them a localisation loss on 10% boxed images moves the map but builds no missing feature
    counterfactuals: float = setting(1.0, "Counterfactuals per image", "box-swap images per batch image: a boxed "
                                     "image's boxes pasted on another boxed image, same label (0: none; only with "
                                     "λ > 0)",
                                     minimum=0.0, maximum=4.0, step=0.25)
    # issue 22: the one click learns from every training image, not only the boxed ones (core/train/upweight.py)
    upweight_errors: float = setting(1.0, "Up-weight the start's errors", "draw the training images the starting "
                                     "model gets wrong this many times as often (Just Train Twice; 1: off; not "
                                     "for a new model, whose errors are noise)",
                                     minimum=1.0, maximum=1000.0)
    # issue 22: composites from every training image the guided model can box itself (core/train/pseudo_boxes.py)
    pseudo_boxes: float = setting(0.0, "Pseudo-boxes from EPG", "once the validation EPG at the guided layer reaches "
                                  "this, box the object on the unboxed training images from the model's own "
                                  "evidence (confident proposals only) and compose counterfactuals from them too "
                                  "(0: off; single-label, with counterfactuals)",
                                  minimum=0.0, maximum=1.0, step=0.05)
    box_dilation: float = setting(0.0, "Box dilation", "grow every box side by this fraction of its size",
                                  minimum=0.0, maximum=1.0, step=0.05)
    seed: int = setting(0, "Seed", "random seed", minimum=0, ui=False)
    device: str = setting("auto", "Device", "torch device (set by the global --device option)", cli=False, ui=False)
    bf16: bool = setting(False, "bf16", "bf16 autocast (CUDA only)", ui=False)
    weight_decay: float = setting(0.0, "Weight decay", "weight decay (Adam)", minimum=0.0, maximum=1.0, ui=False)
    min_metric: float = setting(0.0, "Stop below", "stop early when val accuracy/F1 falls below this (0: never)",
                                minimum=0.0, maximum=1.0, ui=False)
    eval_split: str = setting("val", "Validation split", "split evaluated after each epoch", cli=False, ui=False)
    max_steps_per_epoch: int = setting(0, "Max steps per epoch (0: all)", "cap on steps per epoch (smoke runs)",
                                       minimum=0, hidden=True)
    select_tolerance: float = setting(0.02, "Selection tolerance", "checkpoints within this of the best worst-group "
                                      "accuracy (then accuracy/F1) count as equal; EPG decides among them",
                                      minimum=0.0, maximum=1.0, cli=False, ui=False)
    keep_start: bool = setting(True, "Keep the start when nothing is better", "the starting model competes in the "
                               "selection: a run none of whose epochs beats it on validation keeps it, activates "
                               "nothing and says so (false: keep the best trained epoch even then; smoke runs)",
                               ui=False)
    freeze_norm: str = setting("auto", "Freeze norm statistics", "normalisation layers keep their running "
                               "statistics while training (auto: no for a new, untrained model, else yes)",
                               choices=FREEZE_NORM_CHOICES, ui=False)

    def __post_init__(self) -> None:
        for name, rule in settings():
            rule.check(name, getattr(self, name))

    def resolved(self, *, is_bcos: bool, fresh: bool = False) -> TrainConfig:
        """This config with `attribution="auto"` replaced by the model's default method, and `freeze_norm="auto"`
        by "no" for a `fresh` base model (new or just converted, never trained) and "yes" otherwise."""
        attribution = methods.default_method(is_bcos) if self.attribution == "auto" else self.attribution
        freeze_norm = ("no" if fresh else "yes") if self.freeze_norm == "auto" else self.freeze_norm
        return replace(self, attribution=attribution, freeze_norm=freeze_norm)

    def freezes_norm(self) -> bool:
        """Whether normalisation layers stay on running statistics ("auto" not yet resolved counts as yes)."""
        return self.freeze_norm != "no"

    def guides_contrast(self, multi_label: bool) -> bool:
        """True when the guided score is the contrast `logit_t - max_{c≠t} logit_c` for this kind of data."""
        return self.target == "contrast" or (self.target == "auto" and not multi_label)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring unknown keys (older/newer checkpoints); values are coerced to the
        field's type, so a form's `3.0` epochs or a JSON row's ints work."""
        known = {f.name: f for f in fields(cls)}
        data = {**data, **({"freeze_norm": _LEGACY_FREEZE_NORM[data["freeze_norm"]]}
                           if isinstance(data.get("freeze_norm"), bool) else {})}  # before "auto", a bool
        return cls(**{k: _coerce(known[k].default, v) for k, v in data.items() if k in known})

    def with_overrides(self, **overrides: Any) -> TrainConfig:
        """A copy with the given non-None fields replaced (validated)."""
        return TrainConfig.from_dict({**self.to_dict(), **{k: v for k, v in overrides.items() if v is not None}})


def settings() -> Iterator[tuple[str, Setting]]:
    """Every field of `TrainConfig` with its `Setting`, in declaration order."""
    for f in fields(TrainConfig):
        yield f.name, f.metadata["setting"]


def default_of(name: str) -> Any:
    """The default value of a `TrainConfig` field."""
    f = next(f for f in fields(TrainConfig) if f.name == name)
    return None if f.default is MISSING else f.default


def _coerce(default: Any, value: Any) -> Any:
    """`value` as the type of `default` (bool/int/float/str); ValueError naming the value otherwise."""
    kind = type(default)
    if kind is bool:
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"{value!r} is not true or false")
            return value.lower() in ("true", "1")
        return bool(value)
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number")
        try:
            return int(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"{value!r} is not a whole number") from exc
    if kind is float:
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a number") from exc
    return value
