"""Compare: two checkpoints side by side — metric table, per-image before|after, activate, HTML report."""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from core import methods
from core.data import ImageLoadError
from core.train import CheckpointError
from services import checkpoints
from services import compare as comparison
from services.checkpoints import EvaluationInfo
from services.compare import ImageChange
from services.evaluation import EPG_LABELS
from ui.deps import AppDeps
from ui.handlers.common import safe_file_stem, user_errors

# Before|after pictures use the model's own explanation at the input, where a person reads them.
COMPARED_METHOD = methods.default_method(is_bcos=True)
SORTS = {"Largest EPG gain": "gain", "Largest EPG regression": "regression", "Prediction changed": "changed"}
METRICS = ["accuracy", "f1", "epg", "epg_decision", "iou", "worst_group_accuracy"]
SINGLE_LABEL_ONLY = {"epg_decision"}  # the decision (class vs runner-up) is a softmax model's
IMAGE_COLUMNS = ["image", "split", "epg_before", "epg_after", "epg_gain", "correct_before", "correct_after"]
PAIRS_SHOWN = 6


def checkpoint_choices(deps: AppDeps, project: str) -> list[tuple[str, int]]:
    """`(label, id)` for every checkpoint of the project, newest first."""
    with user_errors():
        rows = checkpoints.list_project_checkpoints(deps.engine, project)
    return [(f"#{c.id} {c.arch}{' (active)' if c.active else ''} · {c.note or c.file_name}", c.id) for c in rows]


def default_pair(deps: AppDeps, project: str) -> tuple[int | None, int | None]:
    """Before = the newest checkpoint's parent (or the active one), after = the newest checkpoint."""
    with user_errors():
        return checkpoints.default_pair(deps.engine, project)


def _metric_rows(evals: list[EvaluationInfo | None], fallbacks: list[Mapping[str, Any]], multi_label: bool
                 ) -> pd.DataFrame:
    """Before, after and change per metric; the EPG rows say which map they measure (`EPG_LABELS`), and the
    decision's appears on single-label projects only."""
    metrics = [(e.metrics if e is not None else {}) or fb for e, fb in zip(evals, fallbacks)]
    shown = [name for name in METRICS if not (multi_label and name in SINGLE_LABEL_ONLY)]
    names = shown + sorted({f"group: {g}" for m in metrics for g in (m.get("group_accuracy") or {})})
    rows = []
    for name in names:
        values = [(m.get("group_accuracy") or {}).get(name[7:]) if name.startswith("group: ") else m.get(name)
                  for m in metrics]
        before, after = (v if isinstance(v, int | float) else None for v in values)
        delta = after - before if before is not None and after is not None else None
        rows.append({"metric": EPG_LABELS.get(name, name), "before": before, "after": after, "change": delta})
    return pd.DataFrame(rows, columns=["metric", "before", "after", "change"]).round(4)


def _image_rows(images: tuple[ImageChange, ...]) -> pd.DataFrame:
    rows = [{"image": c.image_id, "split": c.split, "epg_before": c.epg_before, "epg_after": c.epg_after,
             "epg_gain": c.epg_gain, "correct_before": c.correct_before, "correct_after": c.correct_after}
            for c in images]
    return pd.DataFrame(rows, columns=IMAGE_COLUMNS).round(4)


def _measured_note(before: EvaluationInfo | None, after: EvaluationInfo | None, matched: bool) -> str:
    """How the two evaluations in the table were measured, or a warning when they were measured differently."""
    if before is None or after is None:
        return ""
    if not matched:
        return (" · ⚠ the two checkpoints were not evaluated the same way (split/layer/method): run "
                "`python app.py evaluate --checkpoint ID` for both")
    split, layer, method = before.measured
    return f" · measured on **{split}**, {method or 'default'} explanations at {layer}"


def compare_checkpoints(deps: AppDeps, project: str, before_id: Any, after_id: Any, sort: str
                        ) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[str, str]], str]:
    """Metric table, per-image table, before|after explanation pairs for the top images, and a note."""
    key = SORTS.get(sort, sort if sort in comparison.IMAGE_SORTS else "gain")
    with user_errors():
        result = comparison.compare_checkpoints(deps.engine, project, before_id, after_id, sort=key,
                                                pairs=PAIRS_SHOWN, data_dir=deps.data_dir)
    summary = _metric_rows([result.evaluation_before, result.evaluation_after],
                           [result.before.metrics, result.after.metrics], result.project.multi_label)
    measured = _measured_note(result.evaluation_before, result.evaluation_after, result.matched)
    images = _image_rows(result.images)
    pairs: list[tuple[str, str]] = []
    try:
        with user_errors():  # one multi-target pass per checkpoint, not one per image
            explained = comparison.explain_pairs(deps.explanations, result, COMPARED_METHOD, "input")
    except (CheckpointError, ImageLoadError) as exc:
        raise gr.Error(f"Cannot explain these images: {exc}") from exc
    for ex_a, ex_b in explained:
        pairs += [(str(ex_a.overlay_path), f"#{ex_a.key.image_id} before"), (str(ex_b.overlay_path),
                                                                             f"#{ex_b.key.image_id} after")]
    note = (f"Before **#{result.before.id}** vs after **#{result.after.id}** · {len(images)} images evaluated by "
            f"both{measured}." if len(images) else "_Per-image results need `python app.py evaluate --checkpoint ID` "
            f"for both checkpoints (the metric table uses the latest evaluation of each)._{measured}")
    if result.run_note:  # the run that made "after": its outcome, why it stopped, what it kept
        note = f"{html.escape(result.run_note)}\n\n{note}"
    return summary, images, pairs, note


ACTIVATE_LABEL = "Activate 'after' model"


def activate(deps: AppDeps, project: str, checkpoint_id: Any, armed: Any = None) -> tuple[str, Any, Any]:
    """Make `checkpoint_id` the project's active model: (note, armed, the button). A checkpoint worse than the
    active one on accuracy/F1 or worst group is not activated at the first click: the note says by how much and
    the button asks again (`armed` holds its id); a second click on the same checkpoint activates it."""
    with user_errors():
        worse = comparison.worse_than_active(deps.engine, project, checkpoint_id)
    if worse and str(armed) != str(checkpoint_id):
        gr.Warning(f"Not activated: {worse}. Click again to activate it anyway.")
        return (f"⚠ **Not activated yet**: {worse}. Press **Activate anyway** to use it all the same.",
                str(checkpoint_id), gr.update(value="Activate anyway", variant="stop"))
    with user_errors():
        checkpoint = checkpoints.activate(deps.engine, project, checkpoint_id)
    return (f"Checkpoint #{checkpoint.id} is now the active model of {project!r}.", None,
            gr.update(value=ACTIVATE_LABEL, variant="secondary"))


def _img_tag(path: str, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" width="192">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def export_report(deps: AppDeps, project: str, before_id: Any, after_id: Any, sort: str) -> str:
    """Write a self-contained HTML report (images inlined as data URIs) and return its path."""
    summary, images, pairs, _note = compare_checkpoints(deps, project, before_id, after_id, sort)
    figures = "".join(_img_tag(path, caption) for path, caption in pairs)
    body = (f"<h1>Guidance Studio — {html.escape(project)}: #{before_id} → #{after_id}</h1>"
            f"<h2>Metrics</h2>{summary.to_html(index=False, na_rep='–')}"
            f"<h2>Explanations (before | after)</h2><div class='pairs'>{figures}</div>"
            f"<h2>Per-image results ({html.escape(sort)})</h2>{images.head(200).to_html(index=False, na_rep='–')}")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:2px 8px}.pairs{display:grid;grid-template-columns:repeat(2,200px);gap:8px}")
    out_dir = deps.data_dir / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"compare-{safe_file_stem(project)}-{before_id}-{after_id}-{int(time.time())}.html"
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>Report</title><style>{style}</style>"
                    f"</head><body>{body}</body></html>", encoding="utf-8")
    return str(path)
