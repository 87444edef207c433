"""The methods a user would pick instead of boxes (issue 22, docs/science.md §9), for `bench/suite.py --parts peers`.

Each is implemented here from its paper on the product's own pieces (the same data, model, loaders, budget and
selection on validation as the one click), never copied:

- **ERM**: the one click without boxes (λ = 0, no counterfactuals), the adaptive schedule from the shortcut baseline.
- **JTT** (Liu et al., ICML 2021): the baseline's training errors are the error set; a *new* model is trained from
  scratch on the training set with the error set up-sampled λ_up times (copies of its records, as the paper does);
  λ_up chosen on validation worst group from `JTT_FACTORS`. No group labels in training.
- **GroupDRO** (Sagawa et al., ICLR 2020): fine-tunes the baseline on the training groups' losses, weights
  q_g ← q_g·exp(η·ℓ_g) renormalised each step, minimising Σ_g q_g ℓ_g, with weight decay and early stopping
  (the epoch of best validation worst group); η from `DRO_STEPS` chosen on validation worst group.
- **DFR** (Kirichenko et al., ICLR 2023): the baseline's features kept; the last layer (the B-cos 1×1 head) re-fitted
  from scratch on group-balanced subsets of the first half of validation, with an L1 penalty chosen on the second
  half's worst group, then re-fitted on balanced subsets of all of validation and averaged over `DFR_SUBSETS` fits.
- **paper recipe** (Rao et al., ICCV 2023): Energy at the input on the class logit, λ 1e-3, Adam lr 1e-4, a fixed
  number of epochs (`PAPER_EPOCHS`, what fits the budget), no counterfactuals.

Every peer returns the row shape of `suite.one_click` (test metrics of the model it selects, `seconds`, `variant`).
"""

from __future__ import annotations

import copy
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.bcos import build_model
from core.data import ImageRecord
from core.train import TrainConfig, load_checkpoint
from core.train.fine_tune import fine_tune
from core.train.loop import TrainData, build_loader, norm_layers, to_device
from core.train.upweight import training_errors

log = logging.getLogger("bench.peers")

JTT_FACTORS = (6.0, 20.0, 50.0)  # the paper's λ_up range for a ~5% error set (20–100), and a milder one
DRO_STEPS = (0.01, 0.1)  # the paper's η grid (Waterbirds: 0.01)
DRO_WEIGHT_DECAY = 1e-4
DFR_PENALTIES = (0.0, 1e-4, 1e-3, 1e-2)
DFR_SUBSETS = 5
PAPER_EPOCHS = 6
BUDGET_S = 300.0


def group_accuracy(model: nn.Module, records: list[ImageRecord], data: TrainData) -> dict[str, Any]:
    """Accuracy per group and worst group of `model` on `records` (single-label; the selection's light check)."""
    loader = build_loader(records, data, 128, shuffle=False, seed=0)
    correct: dict[int, list[bool]] = {}
    model.eval()
    with torch.no_grad():
        for batch in loader:
            right = model(batch["image"]).argmax(1) == batch["label"]
            for group, ok in zip(batch["group"].tolist(), right.tolist()):
                correct.setdefault(group, []).append(ok)
    per_group = {g: sum(v) / len(v) for g, v in correct.items()}
    return {"worst_group_accuracy": min(per_group.values()), "per_group": per_group}


# ---------------------------------------------------------------------------------------------------- JTT


def jtt(data: TrainData, baseline: nn.Module, seed: int, factor: float, fresh_lr: float = 1e-3,
        **overrides: Any) -> tuple[nn.Module, dict[str, Any]]:
    """JTT's second stage: a new model trained on train + (factor − 1) copies of the baseline's error set
    (`overrides`: TrainConfig fields, e.g. an epoch cap without a budget for an epoch-matched comparison)."""
    ordered = build_loader(data.train, data, 128, shuffle=False, seed=seed)
    errors = training_errors(baseline, ordered, multi_label=data.multi_label, device=torch.device("cpu"))
    extra = [r for r in data.train if r.key in errors.keys] * max(0, round(factor) - 1)
    upsampled = replace(data, train=[replace(r, boxes=(), box_labels=()) for r in [*data.train, *extra]])
    torch.manual_seed(seed)
    model = build_model("bcos_small", len(data.classes))
    cfg = TrainConfig().with_overrides(device="cpu", seed=seed, lam=0.0, counterfactuals=0.0, lr=fresh_lr,
                                       freeze_norm="no", **{"budget_s": BUDGET_S, **overrides})
    with tempfile.TemporaryDirectory() as out:
        result = fine_tune(model, upsampled, cfg, out_dir=Path(out), fresh=True)
        chosen = load_checkpoint(Path(result.best["path"])).model if result.best else model
        val = (result.best or {"metrics": result.base_metrics})["metrics"]
    return chosen, {"error_set": len(errors.keys), "factor": factor, "epochs_run": len(result.history),
                    "val_worst_group": val.get("worst_group_accuracy")}


# ---------------------------------------------------------------------------------------------------- GroupDRO


def group_dro(data: TrainData, baseline: nn.Module, seed: int, step: float) -> tuple[nn.Module, dict[str, Any]]:
    """Fine-tune `baseline` with the GroupDRO objective until the budget; the epoch of best val worst group."""
    torch.manual_seed(seed)
    model = copy.deepcopy(baseline)
    groups = len(data.group_names)
    q = torch.full((groups,), 1.0 / groups)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=DRO_WEIGHT_DECAY)
    loader = build_loader(data.train, data, 64, shuffle=True, seed=seed)
    started, best, best_state, epochs = time.monotonic(), -1.0, copy.deepcopy(model.state_dict()), 0
    epoch_s = 0.0
    while time.monotonic() - started + epoch_s <= BUDGET_S or epochs < 1:
        epoch_started = time.monotonic()
        model.train()
        for layer in norm_layers(model):  # fine-tuning: running statistics stay (as the one click does)
            layer.eval()
        for batch in loader:
            batch = to_device(batch, torch.device("cpu"))
            losses = F.cross_entropy(model(batch["images"]), batch["label"], reduction="none")
            one_hot = F.one_hot(batch["group"].clamp(min=0), groups).float()  # (B, G)
            counts = one_hot.sum(0)
            group_loss = (one_hot * losses[:, None]).sum(0) / counts.clamp(min=1)
            with torch.no_grad():
                q = q * torch.exp(step * group_loss.detach() * (counts > 0))
                q = q / q.sum()
            optimizer.zero_grad(set_to_none=True)
            (q * group_loss).sum().backward()
            optimizer.step()
        epochs += 1
        worst = group_accuracy(model, list(data.val), data)["worst_group_accuracy"]
        if worst > best:
            best, best_state = worst, copy.deepcopy(model.state_dict())
        epoch_s = time.monotonic() - epoch_started
    model.load_state_dict(best_state)
    return model, {"step": step, "epochs_run": epochs, "val_worst_group": best}


# ---------------------------------------------------------------------------------------------------- DFR


def _features(model: nn.Module, records: list[ImageRecord], data: TrainData) -> tuple[Tensor, Tensor, Tensor]:
    """The baseline's layer4 maps (N, F, h, w), labels and groups of `records`."""
    loader = build_loader(records, data, 128, shuffle=False, seed=0)
    maps, labels, groups = [], [], []
    model.eval()
    with torch.no_grad():
        for batch in loader:
            maps.append(model.forward_features(batch["image"]))
            labels.append(batch["label"])
            groups.append(batch["group"])
    return torch.cat(maps), torch.cat(labels), torch.cat(groups)


def _balanced(groups: Tensor, generator: torch.Generator) -> Tensor:
    """Indices of a group-balanced subset: every group subsampled to the smallest group's size."""
    present = groups.unique()
    smallest = min(int((groups == g).sum()) for g in present)
    picks = []
    for g in present:
        members = (groups == g).nonzero().flatten()
        picks.append(members[torch.randperm(len(members), generator=generator)[:smallest]])
    return torch.cat(picks)


def _fit_head(model: nn.Module, maps: Tensor, labels: Tensor, penalty: float, seed: int) -> nn.Module:
    """A new head (the model's own B-cos 1×1 conv, re-initialised) fitted on `maps` by full-batch L-BFGS with an L1
    penalty on its weights; the rest of `model` untouched."""
    torch.manual_seed(seed)
    head = copy.deepcopy(model.fc)
    for parameter in head.parameters():
        nn.init.normal_(parameter, std=0.01)
    optimizer = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=200, line_search_fn="strong_wolfe")
    bias = float(getattr(model, "logit_bias", 0.0))

    def closure() -> Tensor:
        optimizer.zero_grad()
        logits = model.avgpool(head(maps)).flatten(1) + bias
        loss = F.cross_entropy(logits, labels) + penalty * sum(p.abs().sum() for p in head.parameters())
        loss.backward()
        return loss

    optimizer.step(closure)
    return head


def _with_heads(model: nn.Module, heads: list[nn.Module]) -> nn.Module:
    """`model` with its head replaced by the average of `heads`' weights (DFR averages its fits)."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, parameter in out.fc.named_parameters():
            parameter.copy_(torch.stack([dict(h.named_parameters())[name] for h in heads]).mean(0))
    return out


def dfr(data: TrainData, baseline: nn.Module, seed: int) -> tuple[nn.Module, dict[str, Any]]:
    """DFR^Val_Tr: tune the L1 penalty on the second half of validation, then fit on balanced subsets of all of it."""
    val = list(data.val)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(val), generator=generator).tolist()
    first, second = [val[i] for i in order[: len(val) // 2]], [val[i] for i in order[len(val) // 2:]]
    maps, labels, groups = _features(baseline, first, data)
    scores = {}
    for penalty in DFR_PENALTIES:
        heads = [_fit_head(baseline, maps[idx], labels[idx], penalty, seed + k)
                 for k in range(DFR_SUBSETS) for idx in [_balanced(groups, generator)]]
        scores[penalty] = group_accuracy(_with_heads(baseline, heads), second, data)["worst_group_accuracy"]
    penalty = max(scores, key=lambda p: (scores[p], -p))
    maps, labels, groups = _features(baseline, val, data)
    heads = [_fit_head(baseline, maps[idx], labels[idx], penalty, seed + k)
             for k in range(DFR_SUBSETS) for idx in [_balanced(groups, generator)]]
    return _with_heads(baseline, heads), {"penalty": penalty, "val_worst_group": scores[penalty]}


# ---------------------------------------------------------------------------------------------------- driver


def choose(runs: list[tuple[nn.Module, dict[str, Any]]]) -> tuple[nn.Module, dict[str, Any]]:
    """The run with the best validation worst group (ties: the first, i.e. the milder setting)."""
    best = max(range(len(runs)), key=lambda i: (runs[i][1]["val_worst_group"] or 0.0, -i))
    return runs[best][0], {**runs[best][1], "grid": [r[1] for r in runs]}


def peer_rows(name: str, seed: int, data: TrainData, baseline_path: Path,
              measure: Callable[[nn.Module], dict[str, Any]]) -> list[dict[str, Any]]:
    """JTT, GroupDRO and DFR on one benchmark and seed: one row each (test metrics by `measure`)."""
    rows = []
    load = lambda: load_checkpoint(baseline_path).model  # noqa: E731 - a fresh copy per peer
    peers: dict[str, Callable[[], tuple[nn.Module, dict[str, Any]]]] = {
        "JTT": lambda: choose([jtt(data, load(), seed, f) for f in JTT_FACTORS]),
        "GroupDRO": lambda: choose([group_dro(data, load(), seed, s) for s in DRO_STEPS]),
        "DFR": lambda: dfr(data, load(), seed),
    }
    for variant, run in peers.items():
        if data.multi_label and variant != "JTT":
            continue  # GroupDRO and DFR as written here need single-label groups
        started = time.monotonic()
        model, info = run()
        seconds = time.monotonic() - started
        rows.append({"part": "peer", "variant": variant, "benchmark": name, "seed": seed,
                     "seconds": round(seconds, 1), "threads": torch.get_num_threads(), "info": info, **measure(model)})
        log.info("%s %s seed %d: %s", name, variant, seed, rows[-1]["worst_group_accuracy"])
    return rows
