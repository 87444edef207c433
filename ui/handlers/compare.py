"""Compare: two checkpoints side by side — metric table, per-image before|after, activate, HTML report."""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from store.models import Image, Project
from store.models_runs import Checkpoint, Evaluation, EvaluationImage
from store.runs import activate_checkpoint, evaluation_results, get_checkpoint, list_checkpoints
from ui.deps import AppDeps
from ui.handlers.common import require_project, transaction
from ui.handlers.explain import compute, explain_request

SORTS = {"Largest EPG gain": "gain", "Largest EPG regression": "regression", "Prediction changed": "changed"}
METRICS = ["accuracy", "f1", "epg", "iou", "worst_group_accuracy"]
IMAGE_COLUMNS = ["image", "split", "epg_before", "epg_after", "epg_gain", "correct_before", "correct_after"]
PAIRS_SHOWN = 6


def checkpoint_choices(deps: AppDeps, project: str) -> list[tuple[str, int]]:
    """`(label, id)` for every checkpoint of the project, newest first."""
    with transaction(deps) as session:
        rows = list_checkpoints(session, require_project(session, project).id)
        return [(f"#{c.id} {c.arch}{' (active)' if c.active else ''} · {c.note or Path(c.path).name}", c.id)
                for c in rows]


def default_pair(deps: AppDeps, project: str) -> tuple[int | None, int | None]:
    """Before = the newest checkpoint's parent (or the active one), after = the newest checkpoint."""
    with transaction(deps) as session:
        rows = list_checkpoints(session, require_project(session, project).id)
        if not rows:
            return None, None
        newest = rows[0]
        active = next((c.id for c in rows if c.active), None)
        before = newest.parent_id or (active if active != newest.id else None) or (rows[-1].id)
        return before, newest.id


def _checkpoint(session: Session, project: Project, checkpoint_id: Any) -> Checkpoint:
    if not checkpoint_id:
        raise gr.Error("Pick both checkpoints (before and after) to compare.")
    checkpoint = get_checkpoint(session, int(checkpoint_id))
    if checkpoint.project_id != project.id:
        raise gr.Error(f"Checkpoint {checkpoint_id} belongs to another project.")
    return checkpoint


def _evaluation_key(evaluation: Evaluation) -> tuple[str, str, str]:
    metrics = evaluation.metrics or {}
    return evaluation.split, str(metrics.get("layer", "input")), str(metrics.get("attribution", ""))


def _matched_evaluations(session: Session, before: Checkpoint, after: Checkpoint, *, with_rows: bool
                         ) -> tuple[Evaluation | None, Evaluation | None, bool]:
    """The two checkpoints' evaluations to compare: the newest pair measured the same way (same split, layer and
    attribution; the test split preferred), else each one's newest. The flag says whether they match."""
    query = select(Evaluation).where(Evaluation.checkpoint_id.in_([before.id, after.id]))
    if with_rows:
        query = query.where(exists().where(EvaluationImage.evaluation_id == Evaluation.id))
    newest: dict[tuple[int, tuple[str, str, str]], Evaluation] = {}
    for evaluation in session.scalars(query.order_by(Evaluation.id)).all():  # later ones win
        newest[(evaluation.checkpoint_id, _evaluation_key(evaluation))] = evaluation
    common = {key for (owner, key) in newest if owner == before.id} & {key for (owner, key) in newest
                                                                       if owner == after.id}
    if common:
        best = max(common, key=lambda k: (k[0] == "test", max(newest[(before.id, k)].id, newest[(after.id, k)].id)))
        return newest[(before.id, best)], newest[(after.id, best)], True

    def latest(owner: int) -> Evaluation | None:
        found = [e for (o, _), e in newest.items() if o == owner]
        return max(found, key=lambda e: e.id) if found else None

    return latest(before.id), latest(after.id), False


def _metric_rows(evals: list[Evaluation | None], fallbacks: list[dict[str, Any]]) -> pd.DataFrame:
    metrics = [(e.metrics if e is not None else {}) or fb for e, fb in zip(evals, fallbacks)]
    names = METRICS + sorted({f"group: {g}" for m in metrics for g in (m.get("group_accuracy") or {})})
    rows = []
    for name in names:
        values = [(m.get("group_accuracy") or {}).get(name[7:]) if name.startswith("group: ") else m.get(name)
                  for m in metrics]
        before, after = (v if isinstance(v, int | float) else None for v in values)
        delta = after - before if before is not None and after is not None else None
        rows.append({"metric": name, "before": before, "after": after, "change": delta})
    return pd.DataFrame(rows, columns=["metric", "before", "after", "change"]).round(4)


def _image_rows(session: Session, before: Evaluation | None, after: Evaluation | None, sort: str) -> pd.DataFrame:
    if before is None or after is None:
        return pd.DataFrame(columns=IMAGE_COLUMNS)
    a, b = evaluation_results(session, before.id), evaluation_results(session, after.id)
    common = sorted(set(a) & set(b))
    splits = dict(session.execute(select(Image.id, Image.split).where(Image.id.in_(common))).all()) if common else {}
    rows = [{"image": i, "split": splits.get(i, ""), "epg_before": a[i].epg, "epg_after": b[i].epg,
             "epg_gain": (b[i].epg - a[i].epg) if a[i].epg is not None and b[i].epg is not None else None,
             "correct_before": a[i].correct, "correct_after": b[i].correct,
             "changed": a[i].predicted_index != b[i].predicted_index or a[i].correct != b[i].correct} for i in common]
    frame = pd.DataFrame(rows, columns=[*IMAGE_COLUMNS, "changed"])
    key = SORTS.get(sort, sort)
    if key == "changed":
        frame = frame.sort_values(["changed", "epg_gain"], ascending=[False, False], na_position="last")
    else:
        frame = frame.sort_values("epg_gain", ascending=key == "regression", na_position="last")
    return frame.drop(columns="changed").round(4)


def _measured_note(before: Evaluation | None, after: Evaluation | None, matched: bool) -> str:
    """How the two evaluations in the table were measured, or a warning when they were measured differently."""
    if before is None or after is None:
        return ""
    if not matched:
        return (" · ⚠ the two checkpoints were not evaluated the same way (split/layer/method): run "
                "`python app.py evaluate --checkpoint ID` for both")
    split, layer, method = _evaluation_key(before)
    return f" · measured on **{split}**, {method or 'default'} explanations at {layer}"


def compare_checkpoints(deps: AppDeps, project: str, before_id: Any, after_id: Any, sort: str
                        ) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[str, str]], str]:
    """Metric table, per-image table, before|after explanation pairs for the top images, and a note."""
    with transaction(deps) as session:
        proj = require_project(session, project)
        ck_a, ck_b = _checkpoint(session, proj, before_id), _checkpoint(session, proj, after_id)
        eval_a, eval_b, matched = _matched_evaluations(session, ck_a, ck_b, with_rows=False)
        summary = _metric_rows([eval_a, eval_b], [ck_a.metrics or {}, ck_b.metrics or {}])
        measured = _measured_note(eval_a, eval_b, matched)
        rows_a, rows_b, _ = _matched_evaluations(session, ck_a, ck_b, with_rows=True)
        images = _image_rows(session, rows_a, rows_b, sort)
        requests = []
        for image_id in images["image"].head(PAIRS_SHOWN).tolist():
            image = session.get(Image, int(image_id))
            requests.append([explain_request(deps, session, proj, image, c) for c in (ck_a, ck_b)])
    pairs: list[tuple[str, str]] = []
    for req_a, req_b in requests:
        ex_a = compute(deps, req_a, "B-cos", "Input", "")
        ex_b = deps.explanations.explain(req_b, "bcos", "input", ex_a.key.class_index)
        pairs += [(str(ex_a.overlay_path), f"#{req_a.image_id} before"), (str(ex_b.overlay_path),
                                                                          f"#{req_b.image_id} after")]
    note = (f"Before **#{ck_a.id}** vs after **#{ck_b.id}** · {len(images)} images evaluated by both{measured}."
            if len(images) else "_Per-image results need `python app.py evaluate --checkpoint ID` for both "
                                f"checkpoints (the metric table uses the latest evaluation of each)._{measured}")
    return summary, images, pairs, note


def activate(deps: AppDeps, project: str, checkpoint_id: Any) -> str:
    """Make `checkpoint_id` the project's active model."""
    with transaction(deps) as session:
        checkpoint = _checkpoint(session, require_project(session, project), checkpoint_id)
        activate_checkpoint(session, checkpoint.id)
    return f"Checkpoint #{checkpoint.id} is now the active model of {project!r}."


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
    path = out_dir / f"compare-{project}-{before_id}-{after_id}-{int(time.time())}.html"
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>Report</title><style>{style}</style>"
                    f"</head><body>{body}</body></html>", encoding="utf-8")
    return str(path)
