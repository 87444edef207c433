"""The Blocks layout: widgets and their wiring only; the work happens in `ui.handlers`.

Named events (drive them with gradio_client, `api_name=`): /projects, /filters, /gallery, /explain,
/load_boxes, /save_boxes, /undo_boxes, /propose_box, /next_image, /prev_image (see also
`ui.tabs`: /start_training, /poll_training, /cancel_training, /checkpoints, /compare,
/activate, /export_report, /models, /register_checkpoint, /new_model, /activate_model,
/recover_model, /import_data, /set_image_size, /carve_validation).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from services.demo import DemoPreparation
from services.settings import MAX_UPLOAD_BYTES, Settings
from ui.deps import AppDeps, build_deps
from ui.handlers import explore
from ui.preparing import build_preparing_banner
from ui.tabs.annotate import LABEL_SYNC_JS, build_annotate_tab
from ui.tabs.compare import build_compare_tab
from ui.tabs.data import build_data_tab
from ui.tabs.explain import build_explain_tab
from ui.tabs.explore import build_explore_tab
from ui.tabs.finetune import WARNING_QUEUE, build_finetune_tab, build_validation_warning
from ui.tabs.models import build_models_tab

log = logging.getLogger(__name__)

_SERVED_IN_PLACE: set[Path] = set()  # data dirs already given to gr.set_static_paths

CSS = """
#gallery .caption-label { font-size: 11px; }
.run-progress progress { height: 18px; }
footer { display: none !important; }
#annot-toolbar { gap: 6px; }
#annot-label .wrap { gap: 4px 10px; }
#proposal-note { background: #fff7e6; border-left: 4px solid #f59e0b; padding: 6px 10px; border-radius: 4px; }
#proposal-note p { margin: 0; }
#annot-label-row { align-items: center; }
#annot-label-title { flex: 0 0 auto !important; min-width: 0 !important; }
body.annot-syncing #model-box-edit,
body.annot-syncing #model-box-edit * { opacity: 0; pointer-events: none !important; }
#pending-panel { flex-wrap: nowrap; }
#pending-panel > * { flex: 1 1 50%; min-width: 0 !important; }
"""

# Keyboard (when not typing in a field): ] / [ next / previous image, Ctrl+S save boxes, Ctrl+Enter save and next,
# Alt+P propose, 1-9 the label for new boxes, and in the "Annotate next" queue Enter / A accept, R reject.
# LABEL_SYNC_JS (ui/tabs/annotate.py) keeps the box editor's default label equal to the label picked.
KEYS_JS = """
<script>
(() => {
  const shown = (el) => el && el.offsetParent !== null;
  const byId = (id) => document.getElementById(id);
  document.addEventListener('keydown', (e) => {
    const t = e.target; const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA');
    const click = (id) => { const b = byId(id); if (shown(b)) { e.preventDefault(); b.click(); return true; } };
    if ((e.ctrlKey || e.metaKey) && e.key === 's') { click('save-boxes'); return; }
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { click('save-next'); return; }
    const syncing = document.body.classList.contains('annot-syncing');  // the label sync's hidden dialog
    if ((typing && !syncing) || (byId('model-box-edit') && !syncing)) return;
    if (e.key === ']') click('next-image');
    if (e.key === '[') click('prev-image');
    if (e.altKey && e.key === 'p') click('propose-box');
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (/^[1-9]$/.test(e.key)) {
      const radios = document.querySelectorAll('#annot-label input[type=radio]');
      const pick = radios[Number(e.key) - 1];
      if (shown(pick)) { e.preventDefault(); pick.click(); }
      return;
    }
    const onButton = t && (t.tagName === 'BUTTON' || t.tagName === 'SELECT');
    if ((e.key === 'Enter' && !onButton) || e.key === 'a' || e.key === 'A') click('queue-accept');
    if (e.key === 'r' || e.key === 'R') click('queue-reject');
  });
})();
</script>
""" + LABEL_SYNC_JS


def build_demo(deps: AppDeps, preparing: DemoPreparation | None = None) -> gr.Blocks:
    """The whole app for one server; per-user values live in `gr.State`, shared services in `deps`.
    `preparing`: the demo project being built in the background (first start): the page shows its progress."""
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
        build_preparing_banner(deps, preparing, project)
        with gr.Tabs():
            with gr.Tab("Explore", id="explore") as explore_tab:
                explore_parts = build_explore_tab(deps, project, image_id)
            with gr.Tab("Explain", id="explain") as explain_tab:
                explain_widgets = build_explain_tab(deps, project, image_id)
            with gr.Tab("Annotate", id="annotate"):
                build_annotate_tab(deps, project, image_id, explain_widgets)
            with gr.Tab("Fine-tune", id="finetune") as finetune_tab:
                val_check = build_validation_warning(deps, project)
                poll, poll_inputs, poll_outputs = build_finetune_tab(deps, project)
            with gr.Tab("Compare", id="compare"):
                on_load = [build_compare_tab(deps, project)]
            with gr.Tab("Models", id="models") as models_tab:
                on_load.append(build_models_tab(deps, project))
                models_tab.select(on_load[-1][0], project, on_load[-1][1], api_visibility="private")  # new runs
            with gr.Tab("Data", id="data"):
                on_load.append(build_data_tab(deps, project))
        gr.Button(visible=False).click(lambda: gr.update(choices=explore.project_names(deps)), None, project,
                                       api_name="projects")

        demo.load(lambda current: explore.project_choices(deps, current), project, project,
                  api_visibility="private", show_progress="hidden")
        # filters with counts, cached mean maps and the gallery on the first load; counts again when Explore
        # is shown after a save elsewhere; Explain's class list on load, its overlay again when shown
        for fn, inputs, outputs in (explore_parts["load"], explain_widgets["load"]):
            demo.load(fn, inputs, outputs, api_visibility="private")
        explore_tab.select(*explore_parts["select"], api_visibility="private", show_progress="hidden")
        explain_tab.select(*explain_widgets["select"], api_visibility="private", show_progress="hidden")
        for fill, outputs in on_load:
            demo.load(fill, project, outputs, api_visibility="private")
        # one poll when the page opens or the tab is shown; it starts the timer only if a run is going
        demo.load(poll, poll_inputs, poll_outputs, api_visibility="private", show_progress="hidden")
        finetune_tab.select(poll, poll_inputs, poll_outputs, api_visibility="private", show_progress="hidden")
        # the validation warning on load and when the tab is shown (an import or a carve may have changed the split)
        demo.load(*val_check, api_visibility="private", show_progress="hidden", concurrency_id=WARNING_QUEUE)
        finetune_tab.select(*val_check, api_visibility="private", show_progress="hidden", concurrency_id=WARNING_QUEUE)
    return demo


def serve_in_place(data_dir: Path) -> None:
    """Let Gradio serve files under `data_dir` where they lie instead of hashing and copying each one into its
    cache per response (48 gallery tiles a page: a hash, a copy and ~14 path resolutions each).

    Safe because Gradio's file route checks `blocked_paths` before static paths: the database and checkpoints
    stay unreachable (tests/ui/test_client.py). Gradio keeps static paths per interpreter; a folder is added once.
    """
    folder = data_dir.resolve()
    if folder not in _SERVED_IN_PLACE:
        _SERVED_IN_PLACE.add(folder)
        gr.set_static_paths([folder])


def launch_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of `demo.launch` every server needs (files, style, keyboard, login).

    Images and cached explanations under the data dir may be served; the database files and the
    checkpoints never are (allowed_paths would otherwise let any visitor download them).
    """
    data = settings.data_dir.resolve()
    blocked = [str(data / name) for name in ("studio.db", "studio.db-wal", "studio.db-shm", "checkpoints", "runs")]
    serve_in_place(data)
    return {"auth": settings.auth_pair, "allowed_paths": [str(data)], "blocked_paths": blocked, "css": CSS,
            "head": KEYS_JS, "show_error": True, "footer_links": [], "max_file_size": MAX_UPLOAD_BYTES}


def launch(settings: Settings, *, block: bool = True, deps: AppDeps | None = None,
           preparing: DemoPreparation | None = None) -> gr.Blocks:
    """Build the app for `settings` (reusing `deps` when given) and serve it (login when `settings.auth` is set);
    `preparing` shows the progress of a demo being built in the background."""
    deps = deps or build_deps(settings)
    demo = build_demo(deps, preparing)
    demo.queue(default_concurrency_limit=4)
    log.info("serving Guidance Studio on http://%s:%d (data dir %s)", settings.host, settings.port,
             settings.data_dir.resolve())
    demo.launch(server_name=settings.host, server_port=settings.port, prevent_thread_lock=not block,
                **launch_options(settings))
    return demo
