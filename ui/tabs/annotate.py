"""The Annotate tab: the box editor with its label choice, save / save-and-next, undo, proposals, the conflict
panel, the "Annotate next" queue, the image's boxes and their history.

Every handler returns a dict of output name -> value (ui.handlers.annotate.VIEW_OUTPUTS); `wire` turns it into
the event's outputs, leaving out (`gr.skip()`) what a handler did not set.

Named events: /load_boxes, /save_boxes, /save_and_next, /reapply_edit, /undo_boxes (its `confirm` input undoes
someone else's change without asking), /propose_box, /annotate_queue, /queue_accept, /queue_reject,
/next_image, /prev_image, /next_unboxed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr
from gradio_image_annotation import image_annotator

from services.catalog import class_names
from ui.deps import AppDeps
from ui.handlers import annotate, annotate_queue
from ui.handlers.annotate import BOX_COLUMNS, HISTORY_COLUMNS, UNDO_LABEL, VIEW_OUTPUTS, View
from ui.handlers.common import author_of

log = logging.getLogger(__name__)

EDITOR_HEIGHT = 470  # px: with the label row and the editor's own tool row, the page fits 1440×900 unscrolled
NO_IMAGE = "No image selected: **Next** opens the next training image without a box."


# The editor (use_default_label) gives a new box its default label without a pop-up, and that default can only be
# changed in its own "Edit label" dialog. This page script keeps it equal to the "Label for new boxes" choice: when
# they differ (checked as soon as a label is picked, and every 200 ms for a remounted editor) it opens that dialog,
# picks the label and presses OK; the label it set is remembered on the editor's element. Meanwhile the dialog is
# invisible and lets the pointer through (CSS in ui/layout.py), so a box drawn at once is drawn, never swallowed.
LABEL_SYNC_JS = """
<script>
(() => {
  const byId = (id) => document.getElementById(id);
  const settle = (ms) => new Promise((done) => setTimeout(done, ms));
  const button = (root, text) => [...root.querySelectorAll('button')].find((b) => b.textContent.trim() === text);
  async function waitFor(find, ms = 1500) {
    for (let waited = 0; waited < ms; waited += 25) {
      const found = find();
      if (found) return found;
      await settle(25);
    }
    throw new Error('the box editor did not answer');
  }
  let syncing = false;
  async function syncEditorLabel() {
    const editor = byId('annot');
    const picked = document.querySelector('#annot-label input[type=radio]:checked');
    const box = editor && editor.querySelector('.annotator-container');
    if (syncing || !box || box.offsetParent === null || !picked || byId('model-box-edit')) return;
    const edit = editor.querySelector('button[aria-label="Edit label"]');
    if (!edit || box.dataset.defaultLabel === picked.value) return;
    syncing = true;
    document.body.classList.add('annot-syncing');
    try {
      edit.click();
      const dialog = await waitFor(() => byId('model-box-edit'));
      const input = await waitFor(() => dialog.querySelector('input'));
      const item = await waitFor(() => {  // the editor takes the focus back once after opening: focus until open
        if (document.activeElement !== input) input.focus();
        if (input.value !== picked.value) {  // the list shows only the labels matching the text typed
          input.value = picked.value;
          input.dispatchEvent(new Event('input', { bubbles: true }));
        }
        return [...dialog.querySelectorAll('li')].find((li) => li.getAttribute('aria-label') === picked.value);
      });
      item.dispatchEvent(new MouseEvent('mousedown', { bubbles: true }));
      await settle(30);
      button(dialog, 'OK').click();
      box.dataset.defaultLabel = picked.value;
    } catch (err) {
      console.warn('could not set the label for new boxes', err);
      const dialog = byId('model-box-edit');
      if (dialog && button(dialog, 'Cancel')) button(dialog, 'Cancel').click();
    } finally {
      syncing = false;
      document.body.classList.remove('annot-syncing');
    }
  }
  document.addEventListener('change', (e) => {  // a label picked (click or number key): tell the editor now
    if (e.target && e.target.matches && e.target.matches('#annot-label input[type=radio]')) syncEditorLabel();
  });
  setInterval(syncEditorLabel, 200);
})();
</script>
"""


def _initial_classes(deps: AppDeps, project: str | None) -> list[str]:
    """The classes of the project shown first (the editor learns its default label when it mounts)."""
    try:
        return class_names(deps.engine, project) if project else []
    except ValueError:  # no such project yet: the labels arrive with the first image
        return []


def _enclosing_tab() -> gr.Tab | None:
    """The `gr.Tab` this tab's widgets are being built in (layout.py opens it around `build_annotate_tab`)."""
    block = gr.context.Context.block
    return block if isinstance(block, gr.Tab) else None


def build_annotate_tab(deps: AppDeps, project: gr.Dropdown, image_id: gr.Number, explain_widgets: dict) -> None:
    classes = _initial_classes(deps, project.value)
    colours = annotate.label_colours(classes)
    with gr.Row(elem_id="annot-toolbar", equal_height=True):
        prev_btn = gr.Button("◀ Previous [", elem_id="prev-image", size="sm", min_width=90)
        next_btn = gr.Button("Next ] ▶", elem_id="next-image", size="sm", min_width=90)
        unboxed_btn = gr.Button("Next without a box", elem_id="next-unboxed", size="sm", min_width=120)
        propose_btn = gr.Button("Propose box (Alt+P)", elem_id="propose-box", size="sm", min_width=120)
        undo_btn = gr.Button(UNDO_LABEL, elem_id="undo-boxes", size="sm", min_width=120)
        save_btn = gr.Button("Save (Ctrl+S)", variant="primary", elem_id="save-boxes", size="sm", min_width=110)
        save_next_btn = gr.Button("Save and next (Ctrl+Enter)", variant="primary", elem_id="save-next", size="sm",
                                  min_width=160)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=480):
            with gr.Row(equal_height=True, elem_id="annot-label-row"):
                gr.Markdown("**Label for new boxes** (keys 1–9)", elem_id="annot-label-title")
                label = gr.Radio(annotate.label_choices(classes), value=classes[0] if classes else None,
                                 label="Label for new boxes", show_label=False, container=False, scale=3,
                                 elem_id="annot-label")
            editor = image_annotator(label="Boxes · c: create, d: drag, e: edit label, Delete: remove, wheel: zoom, "
                                     "space: fit", elem_id="annot", label_list=classes, label_colors=list(
                                         colours.values()), use_default_label=True, image_type="filepath",
                                     sources=[], show_clear_button=False, show_remove_button=True,
                                     show_download_button=False, height=EDITOR_HEIGHT)
        with gr.Column(scale=2, min_width=340):
            title = gr.Markdown(NO_IMAGE, elem_id="annot-title")
            proposal_note = gr.Markdown(visible=False, elem_id="proposal-note")
            status = gr.Textbox(label="Status", interactive=False, lines=2, max_lines=5, elem_id="annot-status")
            with gr.Row(visible=False, elem_id="pending-panel", variant="panel") as pending_panel:
                with gr.Column(min_width=150):
                    gr.Markdown("**Your unsaved boxes** (right) were not saved: someone else saved this image "
                                "first, and the editor shows their version. Put your edit back onto it, check, "
                                "then Save.")
                    reapply_btn = gr.Button("Re-apply my edit", variant="primary", size="sm",
                                            elem_id="reapply-edit")
                pending_editor = image_annotator(label="Your unsaved boxes", elem_id="annot-pending",
                                                 interactive=False, image_type="filepath", sources=[],
                                                 show_clear_button=False, show_download_button=False,
                                                 min_width=150)
            with gr.Column(visible=False, elem_id="queue-panel", variant="panel") as queue_panel:
                queue_note = gr.Markdown(elem_id="queue-note")
                with gr.Row():
                    accept_btn = gr.Button("Accept and next (Enter / A)", variant="primary", size="sm",
                                           elem_id="queue-accept")
                    reject_btn = gr.Button("Reject (R)", size="sm", elem_id="queue-reject")
            queue_btn = gr.Button("Annotate next: the images where a box helps most", size="sm",
                                  elem_id="start-queue")
            boxes = gr.Dataframe(headers=BOX_COLUMNS, label="Saved boxes of this image", interactive=False,
                                 max_height=180, elem_id="annot-boxes")
            with gr.Accordion("History of this image's boxes", open=False):
                history = gr.Dataframe(headers=HISTORY_COLUMNS, label="Newest first", interactive=False,
                                       max_height=240)
    confirm = gr.Checkbox(False, visible=False, label="Confirm undo of someone else's change")  # API: confirm=True
    snapshot, pending, undo_armed, proposal, queue = (gr.State(None) for _ in range(5))
    parts = {"editor": editor, "snapshot": snapshot, "boxes": boxes, "history": history, "title": title,
             "label": label, "pending": pending, "pending_panel": pending_panel, "pending_editor": pending_editor,
             "undo_armed": undo_armed, "undo_button": undo_btn, "proposal": proposal, "proposal_note": proposal_note,
             "image_id": image_id, "queue": queue, "queue_panel": queue_panel, "queue_note": queue_note,
             "status": status}
    view = [name for name in VIEW_OUTPUTS if name != "image_id"]  # editor first, status last (API order)
    moving = list(VIEW_OUTPUTS)  # ... and events that open another image

    def wire(trigger: Any, fn: Callable[..., View], inputs: Sequence[Any], names: Sequence[str],
             **options: Any) -> Any:
        def run(request: gr.Request, *args: Any) -> tuple:  # gradio passes the request where it is annotated
            out = fn(*args, author=author_of(request))
            return tuple(out[name] if name in out else gr.skip() for name in names)

        return trigger(run, list(inputs), [parts[name] for name in names], **options)

    method, layer = explain_widgets["method"], explain_widgets["layer"]
    wire(image_id.change, lambda n, i, c, q, m, la, author: annotate_queue.open_view(deps, n, i, c, q, m, la),
         [project, image_id, label, queue, method, layer], view, api_name="load_boxes")
    wire(save_btn.click, lambda n, s, v, c, p, author: annotate.save_view(deps, n, s, v, author, chosen=c,
                                                                           proposal=p),
         [project, snapshot, editor, label, proposal], view, api_name="save_boxes")
    wire(save_next_btn.click, lambda n, s, v, c, p, author: _save_and_next(deps, n, s, v, author, c, p),
         [project, snapshot, editor, label, proposal], moving, api_name="save_and_next")
    wire(reapply_btn.click, lambda n, p, author: annotate.reapply_view(deps, n, p), [project, pending], view,
         api_name="reapply_edit")
    wire(undo_btn.click, lambda n, s, a, c, author: annotate.undo_view(deps, n, s, a, author, confirm=bool(c)),
         [project, snapshot, undo_armed, confirm], view, api_name="undo_boxes")
    wire(propose_btn.click, lambda n, i, v, m, la, c, author: annotate_queue.propose_view(deps, n, i, v, m, la, c),
         [project, image_id, editor, method, layer, label], view, api_name="propose_box")
    wire(queue_btn.click, lambda n, i, c, m, la, author: annotate_queue.start_queue(deps, n, i, c, m, la),
         [project, image_id, label, method, layer], moving, api_name="annotate_queue")
    wire(accept_btn.click, lambda n, s, v, c, p, q, i, author: annotate_queue.accept(deps, n, s, v, author, c, p, q, i),
         [project, snapshot, editor, label, proposal, queue, image_id], moving, api_name="queue_accept")
    wire(reject_btn.click, lambda q, i, author: annotate_queue.reject(q, i), [queue, image_id], moving,
         api_name="queue_reject")
    prev_btn.click(lambda n, i: annotate.step_image(deps, n, i, -1), [project, image_id], image_id,
                   api_name="prev_image")
    next_btn.click(lambda n, i: annotate.step_image(deps, n, i, 1), [project, image_id], image_id,
                   api_name="next_image")
    unboxed_btn.click(lambda n, i: _next_unboxed(deps, n, i), [project, image_id], image_id,
                      api_name="next_unboxed")
    tab = _enclosing_tab()
    if tab is not None:  # opened with nothing picked: start on the next image that needs a box
        tab.select(lambda n, i: gr.skip() if i else _next_unboxed(deps, n, None), [project, image_id], image_id,
                   api_visibility="private")


def _next_unboxed(deps: AppDeps, project: str, image_id: int | None) -> Any:
    """The next training image without a box (a message and no change when there is none)."""
    try:
        found = annotate.next_image_needing_box(deps, project, image_id)
    except gr.Error as exc:
        gr.Warning(str(exc))
        return gr.skip()
    if found is None:
        gr.Info("Every training image has a box.")
        return gr.skip()
    return found


def _save_and_next(deps: AppDeps, project: str, snapshot: Any, value: Any, author: str, chosen: str | None,
                   proposal: Any) -> View:
    """Save, then open the next training image without a box (stay here on a conflict)."""
    out = annotate.save_view(deps, project, snapshot, value, author, chosen=chosen, proposal=proposal)
    if out.get("pending") is not None:
        return out
    found = annotate.next_image_needing_box(deps, project, snapshot.image_id if snapshot else None)
    if found is None or (snapshot is not None and found == snapshot.image_id):
        gr.Info("Saved. Every training image has a box now.")
        return out
    return {**out, "image_id": found}
