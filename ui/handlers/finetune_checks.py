"""What the Fine-tune tab warns about before a run starts: a validation split too small to judge it.

The rule is core/train/selection.py `VALIDATION_RULE` (fewer than 50 images behind the decision score); the counting
and the carve that fixes it are `services.validation_split`. The Data tab shows the same warning with its button.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from services import validation_split
from services.validation_split import ValidationCheck
from ui.deps import AppDeps
from ui.handlers.common import plain_markdown

log = logging.getLogger(__name__)

CARVE_BUTTON = "Carve a bigger validation split"
FROM_FINETUNE = f"“{CARVE_BUTTON}” in the Data tab"


def warning_text(check: ValidationCheck, button: str) -> str | None:
    """The warning in plain words, its fix told as the page's `button` (e.g. "“Carve …” below") does it; None when
    the split is big enough. Plain text: names stay as typed (Markdown goes through `warning_markdown`)."""
    if check.problem is None:
        return None
    fix = f"{button} {check.carve_effect}." if check.carve_effect else check.shortfall
    return f"{check.problem} {fix}"


def warning_markdown(check: ValidationCheck, button: str) -> str:
    """`warning_text` as Markdown that shows every name literally ("" when there is nothing to warn about)."""
    text = warning_text(check, button)
    return "⚠️ " + plain_markdown(text) if text else ""


def check_or_none(deps: AppDeps, project: str | None) -> ValidationCheck | None:
    """The project's validation check, or None without a project or for a name that is not one (typed into the
    project box): a warning is no place for an error."""
    if not project:
        return None
    try:
        return validation_split.check_validation(deps.engine, project)
    except ValueError as exc:  # NotFoundError is a ValueError
        log.info("no validation check for %r: %s", project, exc)
        return None


def validation_warning(deps: AppDeps, project: str | None) -> dict[str, Any]:
    """The Fine-tune tab's warning (`#finetune-val-warning`): shown when the project's validation split is too small
    to judge a run, with what to do; hidden otherwise."""
    check = check_or_none(deps, project)
    text = warning_markdown(check, FROM_FINETUNE) if check is not None else ""
    return gr.update(value=text, visible=bool(text))


__all__ = ["CARVE_BUTTON", "check_or_none", "validation_warning", "warning_markdown", "warning_text"]
