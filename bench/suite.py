"""The shortcut benchmark suite (issue 13): does one click fix shortcuts beyond the demo?

Four benchmarks (core/data/shortcuts.py): the demo (colour object, badge cue), shape (circle vs square, corner-square
cue), texture (stripes vs dots, background cue, Waterbirds-like) and multilabel (3 textures, one badge per class).
Per benchmark:

- ``learn``: the object alone is learnable by the product's plain training — a new model (``bcos_small``) trained
  without boxes on a copy of the training set whose cue carries no information (agrees on 50%), as
  ``model new`` + ``train --lam 0 --schedule fixed --epochs N`` (lr 1e-3) does; test accuracy / worst group.
- ``baseline``: the same route on the real training set (cue agrees on 95%) must give a shortcut model
  (test worst group ≤ 0.3, aligned accuracy ≥ 0.9). The demo's baseline is the shipped checkpoint.
- ``guided`` / ``control``: the one click (``TrainConfig()``, plus ``CANDIDATE`` overrides of a recipe under test:
  the adaptive schedule from lr 1e-3 with box-swap counterfactuals, core/train/counterfactual.py) from the baseline
  with the boxes of 10% of the training images, and the control that uses no boxes at all (λ = 0, no
  counterfactuals) replaying the guided run's learning rates.
- ``old``: the one click before issue 13 (fixed 2 epochs at lr 1e-4, no counterfactuals).
- ``ablation``: the two halves of the one click alone (counterfactuals with λ = 1e-9; the localisation loss alone).
- ``target``: the one click with the class logit and with the contrast as the guided score (multi-label's `auto`).
- ``boxes``: the box budget (1%, 3%, 10%, 30%) and quality (dilated 25%, shifted by half the box) sweep.

Test metrics of each run: worst group, aligned accuracy, accuracy/F1, EPG at the input of the class logit's map
(``epg``, as ``evaluate``), of the decision's map (``epg_contrast``, single-label) and at the guided layer
(``epg_guided_layer``). Prints one JSON object per run (with its ``recipe`` and ``threads``); ``--from-log FILE...``
rebuilds the tables (and the plot with ``--plot``) from kept lines: ``bench/suite_default_runs.jsonl`` (the one
click since 2026-12-07, 2 threads per run), ``bench/suite_counterfactual_runs.jsonl`` (its candidate on one core
per run, and the ablation, target and box sweep) and ``bench/suite_runs.jsonl`` (the earlier candidate without
counterfactuals, lr from 1e-4). Slow: minutes per run; run one suite at a time (each uses ``--threads``, default 2,
the issue's "2 CPU cores"); never part of the test run.

    python bench/suite.py --parts learn baseline guided --benchmarks shape --seeds 0
    python bench/suite.py --from-log bench/suite_default_runs.jsonl [--plot docs/suite_boxes.png]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import peers
from core.bcos import build_model
from core.data import ImageRecord
from core.data.shortcuts import BENCHMARKS, ShortcutConfig, aligned_groups, generate_shortcut_dataset, shortcut_records
from core.train import TrainConfig, load_checkpoint, save_checkpoint
from core.train.evaluate import evaluate
from core.train.fine_tune import fine_tune
from core.train.loop import TrainData, build_loader, to_device

ROOT = Path(__file__).resolve().parents[1]
DEMO_BASELINE = ROOT / "checkpoints" / "demo-baseline.pt"
CACHE = Path(tempfile.gettempdir()) / "guidance-suite"
ARCH = "bcos_small"
# The product's plain route for a new model: `train --lam 0 --schedule fixed --epochs N` (lr 1e-3; fresh: norm
# statistics learn). Fixed, so a baseline is the last of N epochs whatever the default schedule.
PLAIN = {"lam": 0.0, "lr": 1e-3, "freeze_norm": "no", "schedule": "fixed"}
BOX_VARIANTS: dict[str, dict[str, Any]] = {
    "1% boxes": {"boxes": 0.01}, "3% boxes": {"boxes": 0.03}, "10% boxes": {"boxes": 0.10},
    "30% boxes": {"boxes": 0.30}, "10% dilated 25%": {"boxes": 0.10, "box_dilation": 0.25},
    "10% shifted": {"boxes": 0.10, "shift": 0.5},
}
log = logging.getLogger("bench.suite")


def dataset(name: str, config: ShortcutConfig, cache: Path) -> Path:
    """Generate (or reuse) benchmark ``name`` under ``cache``; one directory per config."""
    tag = f"{name}-s{config.seed}-n{config.train_size}-a{config.train_aligned:g}"
    directory = cache / "data" / tag
    generate_shortcut_dataset(name, directory, config)
    return directory


def train_data(name: str, directory: Path, *, val_every: int = 1, train: list[ImageRecord] | None = None) -> TrainData:
    """The benchmark as a project sees it: train (imported boxes), val with boxes, groups."""
    bench = BENCHMARKS[name]
    return TrainData(train=train if train is not None else shortcut_records(name, directory, "train"),
                     val=shortcut_records(name, directory, "val")[::val_every], classes=list(bench.classes),
                     image_size=64, multi_label=bench.multi_label, group_names=list(bench.groups))


def test_metrics(name: str, model: torch.nn.Module, data: TrainData, test: list[ImageRecord]) -> dict[str, Any]:
    """Accuracy (F1 for multi-label), worst group, aligned accuracy, EPG and IoU at the input (as `evaluate`: the
    class logit's map), EPG at the layer the one click guides (`epg_guided_layer`, TrainConfig().layer), and EPG of
    the decision's map at the input (`epg_contrast`: `logit_t − max_{c≠t} logit_c`; multi-label: the class logit's)."""
    loader = build_loader(test, data, 128, shuffle=False, seed=0)

    def run(**options: Any) -> dict[str, Any]:
        return evaluate(model.eval(), (to_device(b, torch.device("cpu")) for b in loader),
                        multi_label=data.multi_label, group_names=list(data.group_names), **options).metrics

    result, guided_layer = run(), run(layer=TrainConfig().layer)
    decision = run(contrast=True) if not data.multi_label else result  # the decision's map (single-label)
    groups = result["group_accuracy"]
    aligned = [groups[g] for g in aligned_groups(name) if g in groups]
    keys = ("accuracy", "f1", "epg", "iou", "worst_group_accuracy")
    return {**{k: result.get(k) for k in keys}, "epg_guided_layer": guided_layer.get("epg"),
            "epg_contrast": decision.get("epg"),
            "aligned_accuracy": statistics.fmean(aligned), "group_accuracy": groups}


def plain_training(name: str, directory: Path, epochs: int, seed: int, out: Path) -> tuple[torch.nn.Module, list]:
    """`model new` + `train --lam 0 --schedule fixed --epochs N`: a new bcos_small trained without boxes (lr 1e-3);
    the last epoch."""
    torch.manual_seed(seed)
    model = build_model(ARCH, len(BENCHMARKS[name].classes))
    cfg = TrainConfig().with_overrides(device="cpu", seed=seed, epochs=epochs, **PLAIN)
    result = fine_tune(model, train_data(name, directory), cfg, out_dir=out)
    return model, result.history


def part_learn(name: str, seed: int, epochs: int, cache: Path) -> dict[str, Any]:
    """Learnability: plain training on a cue-free copy of the training set; test metrics of the last epoch."""
    directory = dataset(name, ShortcutConfig(seed=seed, train_aligned=0.5), cache)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as out:
        model, history = plain_training(name, directory, epochs, seed, Path(out))
    data = train_data(name, directory)
    metrics = test_metrics(name, model, data, shortcut_records(name, directory, "test"))
    curve = [round(h.get("worst_group_accuracy") or 0.0, 3) for h in history]
    return {"part": "learn", "benchmark": name, "seed": seed, "epochs": epochs, "val_worst_group_curve": curve,
            "seconds": round(time.monotonic() - started, 1), **metrics}


def baseline_path(name: str, epochs: int, cache: Path) -> Path:
    """Where the benchmark's baseline checkpoint lives (the demo's is the shipped one)."""
    return DEMO_BASELINE if name == "demo" else cache / "baselines" / f"{name}-e{epochs}.pt"


def part_baseline(name: str, epochs: int, cache: Path) -> dict[str, Any]:
    """The shortcut baseline by the product's plain route on the real (95% aligned) training set, seed 0."""
    directory = dataset(name, ShortcutConfig(), cache)
    data = train_data(name, directory)
    started = time.monotonic()
    path = baseline_path(name, epochs, cache)
    if name != "demo" and not path.exists():
        with tempfile.TemporaryDirectory() as out:
            model, _ = plain_training(name, directory, epochs, 0, Path(out))
        path.parent.mkdir(parents=True, exist_ok=True)
        written = save_checkpoint(path.parent, model, classes=list(data.classes), config={"baseline_epochs": epochs})
        written.replace(path)
    metrics = test_metrics(name, load_checkpoint(path).model, data, shortcut_records(name, directory, "test"))
    return {"part": "baseline", "benchmark": name, "epochs": epochs if name != "demo" else 4,
            "seconds": round(time.monotonic() - started, 1), "shortcut": bool(
                (metrics["worst_group_accuracy"] or 0) <= 0.3 and metrics["aligned_accuracy"] >= 0.9), **metrics}


def _boxed_train(name: str, directory: Path, fraction: float, shift: float, seed: int) -> list[ImageRecord]:
    """Training records with boxes on a seeded, stratified `fraction` of the images, optionally shifted."""
    records = shortcut_records(name, directory, "train", boxes="all")
    generator = torch.Generator().manual_seed(1000 + seed)
    order = torch.randperm(len(records), generator=generator).tolist()
    chosen = set(order[: max(1, round(fraction * len(records)))])
    out = []
    for i, r in enumerate(records):
        if i not in chosen:
            out.append(replace(r, boxes=(), box_labels=()))
            continue
        boxes = []
        for x0, y0, x1, y1 in r.boxes:  # shift right/down by `shift` of the box size, clamped to the image
            dx, dy = min(shift * (x1 - x0), 64 - x1), min(shift * (y1 - y0), 64 - y1)
            boxes.append((x0 + dx, y0 + dy, x1 + dx, y1 + dy))
        out.append(replace(r, boxes=tuple(boxes)))
    return out


# The one click is `TrainConfig()`: since issue 13, the adaptive schedule from lr 1e-3 with box-swap counterfactuals.
# `CANDIDATE` holds overrides of a recipe under test (empty: the defaults); `OLD_ONE_CLICK` is the one click before.
CANDIDATE: dict[str, Any] = {}
OLD_ONE_CLICK: dict[str, Any] = {"schedule": "fixed", "epochs": 2, "lr": 1e-4, "counterfactuals": 0.0}
RECIPE_KEYS = ("schedule", "epochs", "lr", "budget_s", "counterfactuals", "lam", "layer", "target", "box_dilation",
               "upweight_errors")


def one_click(name: str, seed: int, baseline_epochs: int, cache: Path, *, lam: float | None = None,
              boxes: float | None = None, shift: float = 0.0, replay: list[float] | None = None,
              **overrides: Any) -> dict[str, Any]:
    """Fine-tune the baseline with `TrainConfig()` (+ overrides); test metrics of the checkpoint the rule selects.

    `replay`: per-epoch learning rates of a guided run to repeat exactly (the control's "same schedule").
    """
    directory = dataset(name, ShortcutConfig(), cache)
    train = _boxed_train(name, directory, boxes, shift, seed) if boxes is not None else None
    data = train_data(name, directory, train=train)
    model = load_checkpoint(baseline_path(name, baseline_epochs, cache)).model
    cfg = TrainConfig().with_overrides(device="cpu", seed=seed, lam=lam, **{**CANDIDATE, **overrides})
    if replay is not None:
        cfg = cfg.with_overrides(schedule="fixed", epochs=len(replay), lr=replay[0])
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as out:
        result = fine_tune(model, data, cfg, out_dir=Path(out), lr_plan=replay)
        chosen = load_checkpoint(Path(result.best["path"])).model if result.best else model
        seconds = time.monotonic() - started
    metrics = test_metrics(name, chosen, data, shortcut_records(name, directory, "test"))
    recipe = {**{k: getattr(cfg, k) for k in RECIPE_KEYS}, **({"replay": replay} if replay is not None else {})}
    return {"benchmark": name, "seed": seed, "recipe": recipe, "seconds": round(seconds, 1),
            "threads": torch.get_num_threads(),
            "lrs": [h.get("lr") for h in result.history],
            "epochs_run": len(result.history), "best_epoch": result.best["epoch"] if result.best else 0,
            "val_worst_group": (result.best or {"metrics": result.base_metrics})["metrics"].get("worst_group_accuracy"),
            "upweighted": result.upweighted, "pseudo_boxes": result.pseudo_boxes,
            "stop_reason": getattr(result, "stop_reason", ""),
            "val_worst_group_curve": [round(h.get("worst_group_accuracy") or 0.0, 3) for h in result.history],
            "val_epg_curve": [round(h.get("epg") or 0.0, 3) for h in result.history], **metrics}


def part_guided(name: str, seed: int, epochs: int, cache: Path) -> list[dict[str, Any]]:
    """The one click and its λ = 0 control replaying the same schedule."""
    guided = {"part": "guided", **one_click(name, seed, epochs, cache)}
    # the control uses no boxes at all: λ = 0 and no box-swap counterfactuals, the guided run's learning rates
    control = {"part": "control", **one_click(name, seed, epochs, cache, lam=0.0, counterfactuals=0.0,
                                              replay=guided["lrs"])}
    return [guided, control]


PAPER_RECIPE: dict[str, Any] = {"layer": "input", "target": "class", "lam": 1e-3, "lr": 1e-4, "counterfactuals": 0.0,
                                "schedule": "fixed", "epochs": peers.PAPER_EPOCHS}


def part_peers(name: str, seed: int, epochs: int, cache: Path) -> list[dict[str, Any]]:
    """The methods a user would pick instead (bench/peers.py), on the same data, seed and budget as the one click:
    ERM (no boxes, the one click's schedule), the paper's recipe, JTT, GroupDRO and DFR."""
    directory = dataset(name, ShortcutConfig(), cache)
    data = train_data(name, directory)
    test = shortcut_records(name, directory, "test")
    rows = [{"part": "peer", "variant": "ERM", **one_click(name, seed, epochs, cache, lam=0.0, counterfactuals=0.0)},
            {"part": "peer", "variant": "paper recipe", **one_click(name, seed, epochs, cache, **PAPER_RECIPE)}]
    return rows + peers.peer_rows(name, seed, data, baseline_path(name, epochs, cache),
                                  lambda model: test_metrics(name, model, data, test))


def part_old(name: str, seed: int, epochs: int, cache: Path) -> list[dict[str, Any]]:
    """The one click before issue 13 (fixed 2 epochs at lr 1e-4, no counterfactuals): what the new one replaced."""
    return [{"part": "old one click", **one_click(name, seed, epochs, cache, **OLD_ONE_CLICK)}]


def part_ablation(name: str, seed: int, epochs: int, cache: Path) -> list[dict[str, Any]]:
    """Which half of the one click does the work: counterfactuals without the localisation loss (λ = 1e-9: λ = 0
    turns the composites off too), and the localisation loss without counterfactuals, each with the one click's
    adaptive schedule."""
    return [{"part": "ablation", "variant": "counterfactuals only (λ = 1e-9)", **one_click(name, seed, epochs, cache,
                                                                                           lam=1e-9)},
            {"part": "ablation", "variant": "localisation only (no counterfactuals)",
             **one_click(name, seed, epochs, cache, counterfactuals=0.0)}]


def part_target(name: str, seed: int, epochs: int, cache: Path) -> list[dict[str, Any]]:
    """The guided score on multi-label data: the one click with each explicit target (`auto` is one of them)."""
    return [{"part": "target", "variant": target, **one_click(name, seed, epochs, cache, target=target)}
            for target in ("class", "contrast")]


def part_boxes(name: str, seed: int, epochs: int, cache: Path, variants: list[str]) -> list[dict[str, Any]]:
    """The box budget and quality sweep, each with the one click's schedule."""
    rows = []
    for variant in variants:
        spec = dict(BOX_VARIANTS[variant])
        row = one_click(name, seed, epochs, cache, boxes=spec.pop("boxes"), shift=spec.pop("shift", 0.0), **spec)
        rows.append({"part": "boxes", "variant": variant, **row})
    return rows


# ---------------------------------------------------------------------------------------------------- tables


def _cell(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean, spread = statistics.fmean(values), (max(values) - min(values)) / 2
    return f"{mean:.3f} ± {spread:.3f}" if len(values) > 1 else f"{mean:.3f}"


def _table(columns: Sequence[str], lines: list[str]) -> list[str]:
    """A markdown table: the header row of `columns`, its rule, then `lines`."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *lines]


def _summary_lines(rows: list[dict[str, Any]], column: str, values: Iterable[str], keys: Sequence[str]) -> list[str]:
    """One line per benchmark and value of `column` found in `rows`: the seeds, then each key's mean ± half-range."""
    lines = []
    for name in dict.fromkeys(r["benchmark"] for r in rows):
        for value in values:
            group = [r for r in rows if r["benchmark"] == name and r[column] == value]
            if group:
                lines.append(f"| {name} | {value} | {len(group)} | "
                             + " | ".join(_cell([r.get(k) for r in group]) for k in keys) + " |")
    return lines


def box_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The box sweep's rows, with each swept benchmark's guided runs as its "10% boxes" point (same recipe)."""
    box = [r for r in rows if r["part"] == "boxes"]
    swept = {(r["benchmark"], r["seed"]) for r in box}
    have = {(r["benchmark"], r["seed"]) for r in box if r["variant"] == "10% boxes"}
    return box + [{**r, "variant": "10% boxes"} for r in rows if r["part"] == "guided"
                  and (r["benchmark"], r["seed"]) in swept - have]


def tables(rows: list[dict[str, Any]]) -> str:
    """Markdown tables of every part found in `rows` (mean ± half-range over seeds)."""
    out: list[str] = []
    learn = [r for r in rows if r["part"] == "learn"]
    if learn:
        columns = ("benchmark", "arch", "epochs", "seed", "test accuracy", "worst group", "val worst group by epoch",
                   "s")
        out += [*_table(columns, [f"| {r['benchmark']} | {r.get('arch', ARCH)} | {r['epochs']} | {r['seed']} | "
                                  f"{r['accuracy']:.3f} | {r['worst_group_accuracy']:.3f} | "
                                  f"{r['val_worst_group_curve']} | {r['seconds']:.0f} |" for r in learn]), ""]
    base = [r for r in rows if r["part"] == "baseline"]
    if base:
        columns = ("benchmark", "baseline epochs", "accuracy", "worst group", "aligned accuracy", "EPG",
                   "shortcut model")
        out += [*_table(columns, [f"| {r['benchmark']} | {r['epochs']} | {r['accuracy']:.3f} | "
                                  f"{r['worst_group_accuracy']:.3f} | {r['aligned_accuracy']:.3f} | {r['epg']:.3f} | "
                                  f"{'yes' if r['shortcut'] else 'no'} |" for r in base]), ""]
    runs = [r for r in rows if r["part"] in ("guided", "control", "old one click")]
    if runs:
        keys = ("worst_group_accuracy", "aligned_accuracy", "accuracy", "epg", "epg_contrast", "epochs_run", "seconds")
        lines = _summary_lines(runs, "part", ("guided", "control", "old one click"), keys)
        out += [*_table(("benchmark", "run", "seeds", *keys), lines), ""]
    for part in ("ablation", "target", "peer"):
        found = [r for r in rows if r["part"] == part]
        if found:
            keys = ("worst_group_accuracy", "aligned_accuracy", "accuracy", "f1", "epg")
            variants = dict.fromkeys(r["variant"] for r in found)
            out += [*_table(("benchmark", part, "seeds", *keys), _summary_lines(found, "variant", variants, keys)),
                    ""]
    box = box_rows(rows)
    if box:
        keys = ("worst_group_accuracy", "aligned_accuracy", "epg")
        out += _table(("benchmark", "boxes", "seeds", *keys), _summary_lines(box, "variant", BOX_VARIANTS, keys))
    return "\n".join(out)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Worst group and EPG against the box budget, one line per benchmark (matplotlib PNG)."""
    import matplotlib  # heavy and optional: only the plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = [v for v in BOX_VARIANTS if "%" in v and " " not in v.replace("% boxes", "")]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    rows = box_rows(rows)
    for name in dict.fromkeys(r["benchmark"] for r in rows):
        xs, worst, epg = [], [], []
        for variant in budget:
            group = [r for r in rows if r["benchmark"] == name and r["variant"] == variant]
            if group:
                xs.append(BOX_VARIANTS[variant]["boxes"] * 100)
                worst.append(statistics.fmean(r["worst_group_accuracy"] for r in group))
                epg.append(statistics.fmean(r["epg"] for r in group))
        axes[0].plot(xs, worst, marker="o", label=name)
        axes[1].plot(xs, epg, marker="o", label=name)
    for axis, title in zip(axes, ("test worst-group accuracy", "test EPG (input)")):
        axis.set_xscale("log")
        axis.set_xticks([1, 3, 10, 30], ["1", "3", "10", "30"])
        axis.set_xlabel("training images with boxes (%)")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    """Run the chosen parts × benchmarks × seeds, printing JSON lines, then the tables (or rebuild from a log)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", nargs="+", default=list(BENCHMARKS), choices=list(BENCHMARKS))
    parser.add_argument("--parts", nargs="+", default=["learn", "baseline", "guided", "boxes"],
                        choices=["learn", "baseline", "guided", "old", "boxes", "ablation", "target", "peers"])
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="TrainConfig overrides of the recipe under test (the guided run; not the peers)")
    parser.add_argument("--jtt-factors", type=float, nargs="+", default=list(peers.JTT_FACTORS))
    parser.add_argument("--dro-steps", type=float, nargs="+", default=list(peers.DRO_STEPS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--learn-epochs", type=int, default=8)
    parser.add_argument("--baseline-epochs", type=int, default=6)
    parser.add_argument("--box-variants", nargs="+", default=list(BOX_VARIANTS), choices=list(BOX_VARIANTS))
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads per run (2: the issue's '2 CPU cores'; run one suite at a time)")
    parser.add_argument("--from-log", type=Path, nargs="+", default=None)
    parser.add_argument("--plot", type=Path, default=None, help="write the box-budget plot (PNG) here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for item in args.set:
        key, _, value = item.partition("=")
        CANDIDATE[key] = TrainConfig.from_dict({key: value}).to_dict()[key]  # typed and validated as the CLI does
    peers.JTT_FACTORS, peers.DRO_STEPS = tuple(args.jtt_factors), tuple(args.dro_steps)
    if args.from_log:
        rows = [json.loads(line) for path in args.from_log for line in path.read_text().splitlines()
                if line.startswith("{")]
    else:
        rows = []
        torch.set_num_threads(args.threads)

        def emit(new: list[dict[str, Any]]) -> None:
            for row in new:
                print(json.dumps(row), flush=True)
            rows.extend(new)

        for name in args.benchmarks:
            if "baseline" in args.parts:
                emit([part_baseline(name, args.baseline_epochs, args.cache)])
            if "learn" in args.parts:
                emit([part_learn(name, seed, args.learn_epochs, args.cache) for seed in args.seeds[:1]])
            for seed in args.seeds:
                if "guided" in args.parts:
                    emit(part_guided(name, seed, args.baseline_epochs, args.cache))
                if "old" in args.parts:
                    emit(part_old(name, seed, args.baseline_epochs, args.cache))
                if "target" in args.parts:
                    emit(part_target(name, seed, args.baseline_epochs, args.cache))
                if "ablation" in args.parts:
                    emit(part_ablation(name, seed, args.baseline_epochs, args.cache))
                if "peers" in args.parts:
                    emit(part_peers(name, seed, args.baseline_epochs, args.cache))
                if "boxes" in args.parts:
                    emit(part_boxes(name, seed, args.baseline_epochs, args.cache, args.box_variants))
    print(tables(rows))
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
