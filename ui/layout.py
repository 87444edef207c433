"""The Blocks layout: widgets and their wiring only; the work happens in `ui.handlers`.

Named events (drive them with gradio_client, `api_name=`): /projects, /filters, /gallery, /explain,
/load_boxes, /save_boxes, /undo_boxes, /propose_box, /next_image, /prev_image (see also
`ui.layout_jobs`: /start_training, /poll_training, /cancel_training, /checkpoints, /compare,
/activate, /export_report, /models, /register_checkpoint, /convert_torchvision).
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr
from gradio_image_annotation import image_annotator

from services.settings import Settings
from ui.deps import AppDeps, build_deps
from ui.handlers import annotate, explain, explore
from ui.handlers.common import author_of
from ui.layout_jobs import build_compare_tab, build_finetune_tab, build_models_tab

log = logging.getLogger(__name__)

CSS = """
#gallery .caption-label { font-size: 11px; }
.run-progress progress { height: 18px; }
footer { display: none !important; }
"""

# Keyboard: ] / [ next / previous image, Ctrl+S save boxes, Alt+P propose (when not typing in a field).
KEYS_JS = """
<script>
document.addEventListener('keydown', (e) => {
  const t = e.target; const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA');
  const click = (id) => { const b = document.getElementById(id); if (b) { e.preventDefault(); b.click(); } };
  if ((e.ctrlKey || e.metaKey) && e.key === 's') { click('save-boxes'); return; }
  if (typing) return;
  if (e.key === ']') click('next-image');
  if (e.key === '[') click('prev-image');
  if (e.altKey && e.key === 'p') click('propose-box');
});
</script>
"""


def _explore_tab(deps: AppDeps, project: gr.Dropdown, image_id: gr.Number) -> dict[str, Any]:
    with gr.Row():
        split = gr.Dropdown([explore.ANY], value=explore.ANY, label="Split", scale=1, allow_custom_value=True)
        klass = gr.Dropdown([explore.ANY], value=explore.ANY, label="Class", scale=1, allow_custom_value=True)
        group = gr.Dropdown([explore.ANY], value=explore.ANY, label="Group", scale=2, allow_custom_value=True)
        annotated = gr.Dropdown(["any", "annotated", "not annotated"], value="any", label="Boxes", scale=1)
        wrong = gr.Checkbox(label="Wrong predictions only", scale=1)
        sort = gr.Dropdown(list(explore.SORT_LABELS), value="Name", label="Sort by", scale=2)
    with gr.Row():
        prev_page = gr.Button("◀ Previous page", size="sm")
        page = gr.Number(0, label="Page (0-based)", precision=0, minimum=0, visible=False)
        summary = gr.Markdown(elem_id="gallery-summary")
        next_page = gr.Button("Next page ▶", size="sm")
    gallery = gr.Gallery(label="Images", columns=8, height=560, allow_preview=False, elem_id="gallery",
                         object_fit="contain", format="png")
    ids = gr.State([])
    inputs = [project, split, klass, group, annotated, wrong, sort, page]
    outputs = [gallery, summary, page, ids]

    def refresh(*values: Any) -> tuple:
        return explore.gallery_page(deps, *values)

    def turn(step: int) -> Any:
        return lambda *v: explore.gallery_page(deps, *v[:-1], int(v[-1] or 0) + step)

    for widget in (split, klass, group, annotated, wrong, sort):
        widget.change(lambda *v: explore.gallery_page(deps, *v[:-1], 0), inputs, outputs)
    prev_page.click(turn(-1), inputs, outputs)
    next_page.click(turn(1), inputs, outputs)
    def pick(ids_: list[int], evt: gr.SelectData) -> int | None:
        return ids_[evt.index] if ids_ and evt.index is not None and evt.index < len(ids_) else None

    gallery.select(pick, [ids], image_id, api_visibility="private")

    def filters(name: str) -> tuple:
        choices = explore.project_filters(deps, name) if name else {"split": [], "class": [], "group": []}
        return tuple(gr.update(choices=choices[k] or [explore.ANY], value=explore.ANY)
                     for k in ("split", "class", "group"))

    gr.on([project.change], filters, project, [split, klass, group], api_name="filters").then(
        refresh, inputs, outputs, api_name="gallery")
    return {"refresh": refresh, "inputs": inputs, "outputs": outputs}


def _explain_tab(deps: AppDeps, project: gr.Dropdown, image_id: gr.Number) -> dict[str, Any]:
    with gr.Row():
        method = gr.Dropdown(list(explain.METHODS), value="B-cos", label="Method")
        layer = gr.Dropdown(list(explain.LAYERS), value="Input", label="Layer")
        klass = gr.Dropdown([explain.PREDICTED], value=explain.PREDICTED, label="Class explained",
                            allow_custom_value=True)
    info = gr.Markdown("Select an image in Explore.", elem_id="explain-info")
    with gr.Row(equal_height=True):
        overlay = gr.Image(label="Explanation overlay", format="png", type="filepath", height=320,
                           elem_id="overlay")
        colour = gr.Image(label="B-cos colour explanation", format="png", type="filepath", height=320)
        scores = gr.Label(label="Prediction", num_top_classes=5)
    inputs = [project, image_id, method, layer, klass]
    outputs = [overlay, colour, scores, info]

    def run(*values: Any) -> tuple:
        if not values[1]:
            return None, None, None, "Select an image in Explore (click a tile)."
        return explain.explain_image(deps, *values)

    gr.on([image_id.change, layer.change, klass.change], run, inputs, outputs,
          api_name="explain", trigger_mode="always_last")
    # Only the layers where the method means something (GradCAM: Mid3/Final), then explain.
    method.change(explain.layer_choices, [method, layer], layer, api_visibility="private").then(
        run, inputs, outputs, api_visibility="private", trigger_mode="always_last")

    def classes(name: str) -> Any:
        labels = explore.project_filters(deps, name)["class"][1:] if name else []
        return gr.update(choices=[explain.PREDICTED, *labels], value=explain.PREDICTED)

    project.change(classes, project, klass, api_visibility="private")
    return {"method": method, "layer": layer}


def _annotate_tab(deps: AppDeps, project: gr.Dropdown, image_id: gr.Number, explain_widgets: dict) -> None:
    title = gr.Markdown("Select an image in Explore, then come here to draw boxes.")
    with gr.Row():
        prev_btn = gr.Button("◀ Previous [", elem_id="prev-image", size="sm")
        next_btn = gr.Button("Next ] ▶", elem_id="next-image", size="sm")
        propose_btn = gr.Button("Propose from explanation (Alt+P)", elem_id="propose-box", size="sm")
        undo_btn = gr.Button("Undo last change", elem_id="undo-boxes", size="sm")
        save_btn = gr.Button("Save boxes (Ctrl+S)", variant="primary", elem_id="save-boxes")
    status = gr.Textbox(label="Status", interactive=False, elem_id="annot-status")
    editor = image_annotator(label="Boxes (c: create, d: drag, e: edit, Delete: remove)", elem_id="annot",
                             label_list=[], image_type="filepath", sources=[], show_clear_button=False,
                             show_remove_button=True, height=520)
    history = gr.Dataframe(headers=annotate.HISTORY_COLUMNS, label="History (newest first)", interactive=False,
                           max_height=240)
    snapshot = gr.State(None)
    loaded = [editor, snapshot, history, title]

    def load(name: str, image: Any) -> tuple:
        if not image:
            return None, None, None, "Select an image in Explore, then come here to draw boxes."
        value, snap, frame, text = annotate.load_annotation(deps, name, image)
        labels = explore.project_filters(deps, name)["class"][1:]
        colours = list(annotate.label_colours(labels).values())
        return gr.update(value=value, label_list=labels, label_colors=colours), snap, frame, text

    image_id.change(load, [project, image_id], loaded, api_name="load_boxes")

    def save(name: str, snap: Any, value: Any, request: gr.Request) -> tuple:
        return annotate.save_annotation(deps, name, snap, value, author_of(request))

    def undo(name: str, snap: Any, request: gr.Request) -> tuple:
        return annotate.undo_annotation(deps, name, snap, author_of(request))

    save_btn.click(save, [project, snapshot, editor], [*loaded, status], api_name="save_boxes")
    undo_btn.click(undo, [project, snapshot], [*loaded, status], api_name="undo_boxes")
    propose_btn.click(lambda n, i, v, m, la: annotate.propose_from_explanation(deps, n, i, v, m, la),
                      [project, image_id, editor, explain_widgets["method"], explain_widgets["layer"]],
                      [editor, status], api_name="propose_box")
    prev_btn.click(lambda n, i: annotate.step_image(deps, n, i, -1), [project, image_id], image_id,
                   api_name="prev_image")
    next_btn.click(lambda n, i: annotate.step_image(deps, n, i, 1), [project, image_id], image_id,
                   api_name="next_image")


def build_demo(deps: AppDeps) -> gr.Blocks:
    """The whole app for one server; per-user values live in `gr.State`, shared services in `deps`."""
    names = explore.project_names(deps)
    with gr.Blocks(title="Guidance Studio", analytics_enabled=False) as demo:
        with gr.Row(equal_height=True):
            gr.Markdown("## Guidance Studio\nSee where the model looks · mark where it should · fine-tune · compare",
                        scale=3)
            project = gr.Dropdown(names, value=names[0] if names else None, label="Project", elem_id="project",
                                  allow_custom_value=True, scale=1, min_width=240)
            # A callable initial value: with a plain None the frontend shows "0" (gradio issue #6728).
            image_id = gr.Number(lambda: None, label="Selected image id", precision=0, elem_id="image-id", scale=1,
                                 min_width=160, placeholder="pick an image in Explore")
        with gr.Tabs():
            with gr.Tab("Explore", id="explore"):
                explore_parts = _explore_tab(deps, project, image_id)
            with gr.Tab("Explain", id="explain"):
                explain_widgets = _explain_tab(deps, project, image_id)
            with gr.Tab("Annotate", id="annotate"):
                _annotate_tab(deps, project, image_id, explain_widgets)
            with gr.Tab("Fine-tune", id="finetune") as finetune_tab:
                poll, poll_inputs, poll_outputs = build_finetune_tab(deps, project)
            with gr.Tab("Compare", id="compare"):
                on_load = [build_compare_tab(deps, project)]
            with gr.Tab("Models", id="models") as models_tab:
                on_load.append(build_models_tab(deps, project))
                models_tab.select(on_load[-1][0], project, on_load[-1][1], api_visibility="private")  # new runs
        gr.Button(visible=False).click(lambda: gr.update(choices=explore.project_names(deps)), None, project,
                                       api_name="projects")
        demo.load(explore_parts["refresh"], explore_parts["inputs"], explore_parts["outputs"], api_visibility="private")
        for fill, outputs in on_load:
            demo.load(fill, project, outputs, api_visibility="private")
        # one poll when the page opens or the tab is shown; it starts the timer only if a run is going
        demo.load(poll, poll_inputs, poll_outputs, api_visibility="private", show_progress="hidden")
        finetune_tab.select(poll, poll_inputs, poll_outputs, api_visibility="private", show_progress="hidden")
    return demo


def launch_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of `demo.launch` every server needs (files, style, keyboard, login).

    Images and cached explanations under the data dir may be served; the database files and the
    checkpoints never are (allowed_paths would otherwise let any visitor download them).
    """
    data = settings.data_dir.resolve()
    blocked = [str(data / name) for name in ("studio.db", "studio.db-wal", "studio.db-shm", "checkpoints", "runs")]
    return {"auth": settings.auth_pair, "allowed_paths": [str(data)], "blocked_paths": blocked, "css": CSS,
            "head": KEYS_JS, "show_error": True, "footer_links": []}


def launch(settings: Settings, *, block: bool = True, deps: AppDeps | None = None) -> gr.Blocks:
    """Build the app for `settings` (reusing `deps` when given) and serve it (login when `settings.auth` is set)."""
    deps = deps or build_deps(settings)
    demo = build_demo(deps)
    demo.queue(default_concurrency_limit=4)
    log.info("serving Guidance Studio on http://%s:%d (data dir %s)", settings.host, settings.port,
             settings.data_dir.resolve())
    demo.launch(server_name=settings.host, server_port=settings.port, prevent_thread_lock=not block,
                **launch_options(settings))
    return demo
