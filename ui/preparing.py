"""First start: while the server builds the demo project in the background, the page shows its progress.

A banner ("Preparing the demo: 1,200/3,200 images…") is polled once a second by a `gr.Timer`; when the demo
becomes usable the project list is refreshed and "demo" selected (which loads the gallery and every tab),
and the timer stops once nothing more will happen. `/demo_status` (api_name) returns the same line.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from services.demo import DemoPreparation
from ui.deps import AppDeps
from ui.handlers import explore

READY = "No demo is being prepared."


def status_line(preparation: DemoPreparation | None) -> str:
    """The banner's text: the preparation's status, or `READY` when there is none."""
    return preparation.status().text() if preparation is not None else READY


def build_preparing_banner(deps: AppDeps, preparation: DemoPreparation | None, project: gr.Dropdown) -> None:
    """The progress banner and its polling (nothing visible without a `preparation`), plus `/demo_status`."""
    status = preparation.status() if preparation is not None else None
    shown = status is not None and status.stage != "ready"
    banner = gr.Markdown(f"⏳ {status.text()}" if status else "", visible=shown, elem_id="demo-progress")
    gr.Button(visible=False).click(lambda: status_line(preparation), None, gr.Textbox(visible=False),
                                   api_name="demo_status")
    if preparation is None:
        return
    timer = gr.Timer(1.0, active=not status.finished)

    def tick(current: str | None) -> tuple[Any, Any, Any]:
        now = preparation.status()
        choose = gr.update()
        if now.usable and not current:  # select the new project once: its change event fills every tab
            names = explore.project_names(deps)
            choose = gr.update(choices=names, value="demo" if "demo" in names else (names[0] if names else None))
        text = f"⏳ {now.text()}" if not now.finished else now.text()
        return gr.update(value=text, visible=now.stage != "ready"), gr.Timer(active=not now.finished), choose

    timer.tick(tick, project, [banner, timer, project], api_visibility="private", show_progress="hidden")


__all__ = ["READY", "build_preparing_banner", "status_line"]
