"""Handlers as plain functions on a temp data dir + SQLite (no server, no browser)."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from services.runs import RunView
from store.db import session_scope
from store.models import Box, BoxEvent
from tests.ui.conftest import SIZE, TinyProject
from ui.data.display import display_scale
from ui.handlers import annotate, compare, explain, explore, finetune, models

ANY = explore.ANY
SHOWN = display_scale(SIZE, SIZE)  # the editor shows the 32×32 fixture images 16× enlarged


def _page(tiny: TinyProject, sort: str = "Name", **kw: object) -> tuple:
    args = {"split": ANY, "class_name": ANY, "group": ANY, "annotated": "any", "wrong_only": False, "page": 0, **kw}
    return explore.gallery_page(tiny.deps, tiny.name, args["split"], args["class_name"], args["group"],
                                args["annotated"], args["wrong_only"], sort, args["page"])


def test_gallery_counts_filters_and_sorts_by_epg(tiny: TinyProject) -> None:
    items, summary, page, ids = _page(tiny, "EPG of the active model (worst first)")
    assert len(items) == 8 and page == 0 and "of **8**" in summary
    assert ids == list(reversed(tiny.image_ids))  # fixture EPG falls with the image index: worst first
    _, summary, _, ids = _page(tiny, split="val")
    assert len(ids) == 2 and "of **2**" in summary
    _, _, _, ids = _page(tiny, class_name="cool")
    assert ids == tiny.image_ids[1::2]
    _, _, _, wrong = _page(tiny, wrong_only=True)
    assert sorted(wrong) == [tiny.image_ids[i] for i in (0, 3, 6)]


def test_gallery_page_past_the_end_shows_the_last_page(tiny: TinyProject) -> None:
    _, _, page, ids = _page(tiny, page=99)
    assert page == 0 and len(ids) == 8


def test_unknown_project_is_a_user_error(tiny: TinyProject) -> None:
    with pytest.raises(gr.Error, match="no project"):
        _page(tiny.__class__(tiny.deps, "nope", [], 0))


def test_the_page_load_refresh_of_the_project_list_never_moves_the_users_pick(tiny: TinyProject) -> None:
    """A page-load answer that lands after the user picked a project must not set the picker back: it names the
    choices only, and picks a project only when the page's one is gone (deleted, renamed)."""
    kept = explore.project_choices(tiny.deps, tiny.name)
    assert kept["choices"] == [tiny.name] and "value" not in kept
    gone = explore.project_choices(tiny.deps, "deleted meanwhile")
    assert gone["value"] == tiny.name


def test_explanation_is_cached_and_scores_sum_to_one(tiny: TinyProject) -> None:
    first = explain.explain_image(tiny.deps, tiny.name, tiny.image_ids[0], "B-cos", "Input", "cool")
    overlay, colour, scores, info = first
    assert Path(overlay).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and colour is not None
    assert set(scores) == {"warm", "cool"} and abs(sum(scores.values()) - 1) < 1e-3
    assert "cool" in info
    assert explain.explain_image(tiny.deps, tiny.name, tiny.image_ids[0], "B-cos", "Input", "cool") == first
    gradcam = explain.explain_image(tiny.deps, tiny.name, tiny.image_ids[0], "GradCAM", "Final", "cool")
    assert gradcam[0] != overlay and Path(gradcam[1]).name.startswith("note-")  # a panel saying why it is empty
    assert "only the B-cos method has it" in gradcam[3]


def test_explain_without_image_says_what_to_do(tiny: TinyProject) -> None:
    with pytest.raises(gr.Error, match="Select an image"):
        explain.explain_image(tiny.deps, tiny.name, None, "B-cos", "Input", "cool")


def _boxes(tiny: TinyProject, image_id: int) -> list[tuple]:
    with session_scope(tiny.deps.engine) as session:
        rows = session.scalars(select(Box).where(Box.image_id == image_id, Box.deleted_at.is_(None))).all()
        return [(b.klass.name, b.x0, b.y0, b.x1, b.y1, b.author) for b in rows]


def _with_box(value: dict, label: str = "warm", coords: tuple = (2, 3, 12, 14)) -> dict:
    """`value` plus a box given in original pixels, as the editor would send it (at display scale)."""
    box = dict(zip(("xmin", "ymin", "xmax", "ymax"), (c * SHOWN for c in coords)), label=label, color="rgb(1, 2, 3)")
    return {**value, "boxes": [box, *value["boxes"]]}


def test_save_writes_boxes_with_author_and_history(tiny: TinyProject) -> None:
    image = tiny.image_ids[0]
    value, snap, _, _ = annotate.load_annotation(tiny.deps, tiny.name, image)
    value2, snap2, history, _, status = annotate.save_annotation(tiny.deps, tiny.name, snap, _with_box(value), "alice")
    assert status.startswith("Saved 1") and _boxes(tiny, image) == [("warm", 2, 3, 12, 14, "alice")]
    assert history.iloc[0]["who"] == "alice" and history.iloc[0]["what"] == "create"
    moved = {**value2, "boxes": [{**value2["boxes"][0], "xmax": 20 * SHOWN}]}
    annotate.save_annotation(tiny.deps, tiny.name, snap2, moved, "bob")
    assert _boxes(tiny, image) == [("warm", 2, 3, 20, 14, "bob")]  # an update of the same box, not a new one


def test_second_save_from_a_stale_view_conflicts_and_changes_nothing(tiny: TinyProject) -> None:
    image = tiny.image_ids[1]
    value, snap, _, _ = annotate.load_annotation(tiny.deps, tiny.name, image)
    annotate.save_annotation(tiny.deps, tiny.name, snap, _with_box(value), "alice")
    reloaded, _, _, _, status = annotate.save_annotation(tiny.deps, tiny.name, snap, _with_box(value, "cool"), "bob")
    assert status.startswith("Conflict")
    assert _boxes(tiny, image) == [("warm", 2, 3, 12, 14, "alice")]
    assert [b["label"] for b in reloaded["boxes"]] == ["warm"]  # the editor shows the stored version


@pytest.mark.parametrize(("label", "coords", "message"), [
    ("dog", (2, 3, 12, 14), "dog"), ("warm", (2, 3, 40, 14), "outside"), ("warm", (12, 3, 2, 14), "inverted"),
])
def test_bad_boxes_are_rejected_and_nothing_is_written(tiny: TinyProject, label: str, coords: tuple,
                                                       message: str) -> None:
    value, snap, _, _ = annotate.load_annotation(tiny.deps, tiny.name, tiny.image_ids[2])
    with pytest.raises(gr.Error, match=message):
        annotate.save_annotation(tiny.deps, tiny.name, snap, _with_box(value, label, coords), "alice")
    assert _boxes(tiny, tiny.image_ids[2]) == []


@pytest.mark.parametrize(("size", "scale"), [((64, 64), 8), ((32, 32), 16), ((100, 64), 8), ((300, 200), 2),
                                             ((512, 100), 1), ((2048, 1000), 1), ((4000, 3000), 0.5),
                                             ((10_000, 10_000), 0.125)])
def test_display_scale_is_a_power_of_two_bringing_the_longest_side_to_512_2048(size: tuple[int, int],
                                                                                scale: float) -> None:
    assert display_scale(*size) == scale


def test_editor_shows_small_images_enlarged_and_boxes_round_trip_in_original_pixels(tiny: TinyProject) -> None:
    image = tiny.image_ids[5]
    value, snap, _, title = annotate.load_annotation(tiny.deps, tiny.name, image)
    assert snap.scale == SHOWN == 16 and "×16" in title
    with PILImage.open(value["image"]) as shown:
        pixels = np.asarray(shown.convert("RGB"))
    with PILImage.open(tiny.deps.data_dir / "images" / "img_05.png") as original:
        assert pixels.shape == (512, 512, 3) and (pixels[::16, ::16] == np.asarray(original.convert("RGB"))).all()
    drawn = {"xmin": 40, "ymin": 56, "xmax": 200, "ymax": 300, "label": "cool", "color": "rgb(1, 2, 3)"}
    value2, snap2, _, _, status = annotate.save_annotation(tiny.deps, tiny.name, snap, {**value, "boxes": [drawn]},
                                                           "alice")
    assert status.startswith("Saved 1")
    assert _boxes(tiny, image) == [("cool", 2.5, 3.5, 12.5, 18.75, "alice")]  # original pixels = editor / 16
    shown_again = value2["boxes"][0]
    assert (shown_again["xmin"], shown_again["ymin"], shown_again["xmax"], shown_again["ymax"]) == (40, 56, 200, 300)
    assert annotate.load_annotation(tiny.deps, tiny.name, image)[0]["boxes"] == value2["boxes"]
    *_, status = annotate.save_annotation(tiny.deps, tiny.name, snap2, value2, "alice")
    assert status.startswith("Nothing to save")  # an unchanged box survives the ×16 / ÷16 trip exactly


def test_undo_reverts_the_last_change(tiny: TinyProject) -> None:
    image = tiny.image_ids[3]
    value, snap, _, _ = annotate.load_annotation(tiny.deps, tiny.name, image)
    _, snap2, _, _, _ = annotate.save_annotation(tiny.deps, tiny.name, snap, _with_box(value), "alice")
    value3, _, _history, _, message = annotate.undo_annotation(tiny.deps, tiny.name, snap2, "alice")
    assert value3["boxes"] == [] and _boxes(tiny, image) == [] and "undone" in message
    with session_scope(tiny.deps.engine) as session:
        assert session.scalar(select(BoxEvent.undo_of_id).order_by(BoxEvent.id.desc()).limit(1)) is not None


def test_next_and_previous_image(tiny: TinyProject) -> None:
    first, second = tiny.image_ids[0], tiny.image_ids[1]
    assert annotate.step_image(tiny.deps, tiny.name, first, 1) == second
    assert annotate.step_image(tiny.deps, tiny.name, second, -1) == first
    assert annotate.step_image(tiny.deps, tiny.name, first, -1) == first  # stays at the start


def test_propose_adds_an_unsaved_box_inside_the_image(tiny: TinyProject) -> None:
    value, _, _, _ = annotate.load_annotation(tiny.deps, tiny.name, tiny.image_ids[0])
    proposed, status = annotate.propose_from_explanation(tiny.deps, tiny.name, tiny.image_ids[0], value,
                                                         "B-cos", "Input")
    box = proposed["boxes"][0]  # at display scale, like every box the editor holds
    assert 0 <= box["xmin"] < box["xmax"] <= SIZE * SHOWN and 0 <= box["ymin"] < box["ymax"] <= SIZE * SHOWN
    assert set(box) == {"xmin", "ymin", "xmax", "ymax", "label", "color"} and "Proposed" in status
    assert _boxes(tiny, tiny.image_ids[0]) == []


def test_models_list_register_rejects_wrong_classes(tiny: TinyProject) -> None:
    import uuid

    from gradio.utils import get_upload_folder

    from core.bcos import build_model
    from core.train import save_checkpoint

    tmp_path = Path(get_upload_folder()) / uuid.uuid4().hex  # where the browser's uploads land
    table = models.list_models(tiny.deps, tiny.name)
    assert table["id"].tolist() == [tiny.checkpoint_id] and table["active"].tolist() == ["●"]
    assert table["measured on"].tolist() == ["train"] and table["accuracy"].tolist() == [0.5]
    wrong = save_checkpoint(tmp_path, build_model("bcos_small", 3), classes=["a", "b", "c"])
    with pytest.raises(gr.Error, match="3 classes"):
        models.register_file(tiny.deps, tiny.name, str(wrong), "")
    not_a_model = tmp_path / "x.pt"
    PILImage.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "x.png")
    not_a_model.write_bytes((tmp_path / "x.png").read_bytes())
    with pytest.raises(gr.Error, match="Not registered"):
        models.register_file(tiny.deps, tiny.name, str(not_a_model), "")
    good = save_checkpoint(tmp_path, build_model("bcos_small", 2), classes=["warm", "cool"])
    table, message = models.register_file(tiny.deps, tiny.name, str(good), "from a test")
    assert len(table) == 2 and "Registered" in message
    assert table["measured on"].tolist() == ["", "train"]  # newest first; the new one was never evaluated


def test_models_list_prefers_the_latest_test_evaluation(tiny: TinyProject) -> None:
    from store.runs import record_evaluation

    with session_scope(tiny.deps.engine) as session:
        record_evaluation(session, checkpoint_id=tiny.checkpoint_id, split="test",
                          metrics={"accuracy": 0.9, "worst_group_accuracy": 0.7, "epg": 0.6}, results=[])
        record_evaluation(session, checkpoint_id=tiny.checkpoint_id, split="val", metrics={"accuracy": 0.1},
                          results=[])
    row = models.list_models(tiny.deps, tiny.name).iloc[0]
    assert (row["measured on"], row["accuracy"], row["worst group"], row["epg"]) == ("test", 0.9, 0.7, 0.6)


def test_compare_same_checkpoint_and_export_report(tiny: TinyProject) -> None:
    metrics, images, pairs, _note = compare.compare_checkpoints(tiny.deps, tiny.name, tiny.checkpoint_id,
                                                               tiny.checkpoint_id, "Largest EPG gain")
    assert len(images) == 8 and (images["epg_gain"] == 0).all()
    assert len(pairs) == 2 * compare.PAIRS_SHOWN
    assert metrics.set_index("metric").loc["accuracy", "before"] == 0.5
    report = Path(compare.export_report(tiny.deps, tiny.name, tiny.checkpoint_id, tiny.checkpoint_id,
                                        "Largest EPG gain"))
    text = report.read_text()
    assert text.startswith("<!doctype html>") and "data:image/png;base64," in text and "src=\"http" not in text


def test_compare_with_empty_pickers_compares_the_default_pair(tiny: TinyProject) -> None:
    # Compare clicked before "Refresh checkpoints" filled the pickers: the pair the tab would open on, not an error
    _, images, _, note = compare.compare_checkpoints(tiny.deps, tiny.name, None, "", "Largest EPG gain")
    assert f"Before **#{tiny.checkpoint_id}** vs after **#{tiny.checkpoint_id}**" in note and len(images) == 8
    with pytest.raises(gr.Error, match="no project named"):  # the fallback keeps the project's own errors
        compare.compare_checkpoints(tiny.deps, "no-such-project-here", None, None, "Largest EPG gain")


def test_compare_uses_evaluations_measured_the_same_way(tiny: TinyProject, tmp_path: Path) -> None:
    from core.bcos import build_model
    from core.train import file_sha256, save_checkpoint
    from store.projects import get_project
    from store.runs import EvaluationImageResult, record_evaluation, register_checkpoint

    path = save_checkpoint(tiny.deps.data_dir / "checkpoints", build_model("bcos_small", 2), classes=["warm", "cool"])
    rows = [EvaluationImageResult(image_id=i, correct=True, score=0.9, epg=0.8, iou=0.3, predicted_index=0)
            for i in tiny.image_ids]
    with session_scope(tiny.deps.engine) as session:
        after = register_checkpoint(session, project_id=get_project(session, tiny.name).id,
                                    path=f"checkpoints/{path.name}", sha256=file_sha256(path), arch="bcos_small").id
        record_evaluation(session, checkpoint_id=after, split="val", metrics={"accuracy": 0.25}, results=[])
    _, _, _, note = compare.compare_checkpoints(tiny.deps, tiny.name, tiny.checkpoint_id, after, "Largest EPG gain")
    assert "not evaluated the same way" in note

    with session_scope(tiny.deps.engine) as session:  # now also on the split the 'before' was measured on
        record_evaluation(session, checkpoint_id=after, split="train", metrics={"accuracy": 0.75}, results=rows)
        record_evaluation(session, checkpoint_id=after, split="val", metrics={"accuracy": 0.125}, results=[])
    metrics, images, _, note = compare.compare_checkpoints(tiny.deps, tiny.name, tiny.checkpoint_id, after,
                                                           "Largest EPG gain")
    table = metrics.set_index("metric")
    assert (table.loc["accuracy", "before"], table.loc["accuracy", "after"]) == (0.5, 0.75)  # train vs train
    assert "measured on **train**" in note and len(images) == 8


def test_activate_and_training_guards(tiny: TinyProject) -> None:
    note, armed, _ = compare.activate(tiny.deps, tiny.name, tiny.checkpoint_id)
    assert "active model" in note and armed is None
    with pytest.raises(gr.Error, match="no fine-tune"):
        finetune.cancel_training(tiny.deps, tiny.name, None)
    bar, _losses, _metrics, runs, active, ended = finetune.poll_training(tiny.deps, tiny.name)
    assert "no run yet" in bar and runs.empty and active is False and ended is None  # idle: the tab's timer stays off


def test_last_action_says_how_the_started_run_ended() -> None:
    now = datetime(2026, 12, 2, 7, 0)
    run = RunView(id=7, status="running", progress=0.5, message="", error="", created=now, started=now,
                  finished=None, step=5, steps_total=10, elapsed_s=75.0, eta_s=75.0, config={})
    assert finetune.ended_action({"run_id": 7}, run) is None  # still going: the line stays as it is
    done = dataclasses.replace(run, status="succeeded", progress=1.0, finished=now)
    assert finetune.ended_action({"run_id": 7}, done) == "Run 7 succeeded after 1:15."
    assert finetune.ended_action({"run_id": 6}, done) is None  # another page's run: not this page's action
    assert finetune.ended_action(None, done) is None
    failed = dataclasses.replace(done, status="failed", error="killed by signal 9")
    assert finetune.ended_action({"run_id": 7}, failed) == "Run 7 failed after 1:15: see the error below."


def test_a_run_that_kept_its_start_is_no_green_success() -> None:
    now = datetime(2026, 12, 7, 7, 0)
    summary = {"outcome": "no_improvement", "stop_reason": "validation decision score saturated (1.000)",
               "kept_epoch": 0, "selection_rule": "decisions first: …", "epochs": 2}
    kept = RunView(id=9, status="succeeded", progress=1.0, message="no improvement — your model is kept: no epoch "
                   "beat it on validation (its accuracy 0.971; the best epoch's 0.857); nothing was activated",
                   error="", created=now, started=now, finished=now, step=10, steps_total=10, elapsed_s=15.0,
                   eta_s=None, config={}, summary=summary)
    assert finetune.ended_action({"run_id": 9}, kept) == ("Run 9 ended after 0:15: no improvement — your model is "
                                                          "kept. Nothing was activated; see why below.")
    bar = finetune.progress_html(kept)
    assert '<b id="run-status" style="color:#b54708">run 9: no improvement — your model is kept</b>' in bar
    assert "accent-color:#f79009" in bar and bar.count("no improvement — your model is kept") == 1  # said once
    assert "its accuracy 0.971; the best epoch&#x27;s 0.857" in bar
    assert ("Why it stopped:</b> stopped: validation decision score saturated (1.000) after 2 epoch(s); kept the "
            "starting model (no epoch beat it on validation)") in bar
    improved = dataclasses.replace(kept, summary={**summary, "outcome": "improved", "kept_epoch": 2})
    assert "color:#b54708" not in finetune.progress_html(improved) and "kept epoch 2" in improved.why
    assert finetune.ended_action({"run_id": 9}, improved) == "Run 9 succeeded after 0:15."
    chance = dataclasses.replace(kept, message="at chance — not learned yet: the kept epoch's validation accuracy "
                                 "0.575 is within noise …",
                                 summary={**summary, "outcome": "at_chance", "kept_epoch": 4})
    assert chance.outcome == "at chance — not learned yet" and not chance.improved
    assert finetune.ended_action({"run_id": 9}, chance) == ("Run 9 ended after 0:15: at chance — not learned yet. "
                                                            "See why below before you use it.")
    assert "color:#b54708" in finetune.progress_html(chance) and "kept epoch 4" in finetune.progress_html(chance)
    weighted = dataclasses.replace(improved, summary={**improved.summary,
                                                      "upweighted": {"images": 97, "of": 2000, "factor": 20.0},
                                                      "pseudo_boxes": {"proposed": 1500, "of": 1800, "epoch": 2}})
    assert ("the 97 of 2000 training images the starting model got wrong were drawn 20× as often"
            in finetune.progress_html(weighted))  # what the run did, shown with it
    assert ("from epoch 2 the model boxed the object itself on 1500 of 1800 unboxed training images"
            in finetune.progress_html(weighted))
    old = dataclasses.replace(kept, summary={})  # a run from before runs had a summary: as it was
    assert old.outcome == "succeeded" and old.why == "" and 'id="run-why"' not in finetune.progress_html(old)


def _form(**changed: object) -> list[object]:
    """The advanced form's values in widget order, defaults except `changed`."""
    return [changed.get(name, getattr(finetune.DEFAULTS, name)) for name, _ in finetune.FORM_SETTINGS]


def test_the_form_passes_only_changed_settings_and_is_generated_from_the_config() -> None:
    names = [name for name, _ in finetune.FORM_SETTINGS]
    assert {"loss", "attribution", "layer", "target", "lam", "lr", "epochs"} <= set(names)
    assert "device" not in names and "select_tolerance" not in names  # not user settings
    lam, epochs = finetune.DEFAULTS.lam * 2 + 0.25, finetune.DEFAULTS.epochs + 1
    assert finetune.form_overrides(_form(lam=lam, epochs=float(epochs))) == {"lam": lam, "epochs": float(epochs)}


@pytest.mark.parametrize(("changed", "message"), [({"lam": -1}, "lam=-1.0 is out of range"),
                                                  ({"epochs": 2.5}, "not a whole number")])
def test_invalid_settings_are_refused_and_nothing_starts(tiny: TinyProject, changed: dict, message: str) -> None:
    with pytest.raises(gr.Error, match=message):
        finetune.start_training(tiny.deps, tiny.name, _form(**changed))
    *_, runs, active, _ended = finetune.poll_training(tiny.deps, tiny.name)
    assert runs.empty and active is False  # no run row, no process


def test_a_10000_pixel_image_is_shown_reduced_and_its_boxes_stay_in_original_pixels(tiny: TinyProject) -> None:
    from store.projects import ImageInput, add_images, get_project, set_image_labels

    side = 10_000
    path = tiny.deps.data_dir / "images" / "huge.png"
    huge = PILImage.new("L", (side, side), 110)
    huge.paste(200, (4000, 5000, 6000, 7000))
    huge.save(path, compress_level=1)
    del huge
    with session_scope(tiny.deps.engine) as session:
        project = get_project(session, tiny.name)
        image, _ = add_images(session, project_id=project.id, images=[ImageInput(
            path="images/huge.png", sha256=hashlib.sha256(path.read_bytes()).hexdigest(), width=side, height=side,
            split="train", group="warm/g")])[0]
        set_image_labels(session, image_id=image.id, class_names=["warm"])
        image_id = image.id

    value, snapshot, _, title = annotate.load_annotation(tiny.deps, tiny.name, image_id)
    assert snapshot.scale == 1 / 8 and "1/8" in title  # 10,000 px → 1,250 px in the browser
    with PILImage.open(value["image"]) as shown:
        assert shown.size == (1250, 1250)
    edited = {**value, "boxes": [{"xmin": 500, "ymin": 625, "xmax": 750, "ymax": 875, "label": "warm"},
                                 {"xmin": 0, "ymin": 0, "xmax": 1250, "ymax": 1250, "label": "warm"}]}
    annotate.save_annotation(tiny.deps, tiny.name, snapshot, edited, "ann")
    assert sorted(b[1:5] for b in _boxes(tiny, image_id)) == [(0, 0, side, side), (4000, 5000, 6000, 7000)]
    reloaded, _, _, _ = annotate.load_annotation(tiny.deps, tiny.name, image_id)  # and back at display scale
    assert sorted((b["xmin"], b["ymax"]) for b in reloaded["boxes"]) == [(0, 1250), (500, 875)]

    items, _, _, ids = explore.gallery_page(tiny.deps, tiny.name, "train", "warm", explore.ANY, "any", False,
                                            "name", 0)
    tile = items[ids.index(image_id)][0]
    assert tile != str(path)
    with PILImage.open(tile) as small:
        assert max(small.size) <= 512

    overlay, _colour, scores, info = explain.explain_image(tiny.deps, tiny.name, image_id, "B-cos", "Input", "warm")
    with PILImage.open(overlay) as shown:  # explained at the model's resolution, shown at a browser-friendly size
        assert max(shown.size) <= 2048
    assert set(scores) == {"warm", "cool"} and f"#{image_id}" in info
    proposed, _ = annotate.propose_from_explanation(tiny.deps, tiny.name, image_id, reloaded, "B-cos", "Input")
    box = proposed["boxes"][0]  # display scale (1/8): inside the 1,250-pixel copy, so inside the image
    assert 0 <= box["xmin"] < box["xmax"] <= 1250 and 0 <= box["ymin"] < box["ymax"] <= 1250


def test_filters_show_counts_and_a_label_with_its_count_still_filters(tiny: TinyProject) -> None:
    options = explore.filter_options(tiny.deps, tiny.name)
    assert options["split"] == [(ANY, ANY), ("train (6)", "train"), ("val (2)", "val")]
    assert options["class"] == [(ANY, ANY), ("warm (4)", "warm"), ("cool (4)", "cool")]  # model output order
    assert options["group"] == [(ANY, ANY), ("cool/g (4)", "cool/g"), ("warm/g (4)", "warm/g")]
    assert options["boxes"] == [("any", "any"), ("annotated (0)", "annotated"), ("not annotated (8)", "not annotated")]
    assert explore.filter_value("val (2)", options["split"]) == "val"
    assert explore.filter_value("val", options["split"]) == "val" and explore.filter_value(ANY, []) == ""
    _, summary, _, ids = _page(tiny, split="val (2)", class_name="cool (4)")  # a client that sent the label
    assert ids == [tiny.image_ids[7]] and "of **1**" in summary
    value, snap, _, _ = annotate.load_annotation(tiny.deps, tiny.name, tiny.image_ids[0])
    annotate.save_annotation(tiny.deps, tiny.name, snap, _with_box(value), "alice")
    assert explore.filter_options(tiny.deps, tiny.name)["boxes"][1] == ("annotated (1)", "annotated")  # fresh counts


def test_mean_maps_are_cached_per_split_and_a_cell_ranks_the_gallery(tiny: TinyProject) -> None:
    from ui.handlers import mean_maps

    assert mean_maps.split_choices(tiny.deps, tiny.name) == ([("train (6)", "train"), ("val (2)", "val")], "val")
    picture, status, state, _ = mean_maps.show(tiny.deps, tiny.name, "train", "", compute=False)
    assert picture is None and "Show mean maps" in status and state is None  # nothing computed on page load
    picture, status, state, choices = mean_maps.show(tiny.deps, tiny.name, "train", "", compute=True)
    assert Path(picture).exists() and "all **6** **train** images" in status and "B-cos at Input" in status
    titles = [label for label, _ in choices["choices"]]
    assert titles == ["warm · all (3)", "cool · all (3)", "cool/g (3)", "warm/g (3)"]  # one group per class
    again = mean_maps.show(tiny.deps, tiny.name, "train", "", compute=False)
    assert "from the cache" in again[1]
    with pytest.raises(gr.Error, match="no images in split"):
        mean_maps.show(tiny.deps, tiny.name, "test", "", compute=True)
    shown, tile, cell, state2, region = mean_maps.select(tiny.deps, state, "0", (0, 0))
    assert tile == "0" and cell == "0,0" and state2["tile"] == 0 and shown != picture
    assert sorted(region["ids"]) == tiny.image_ids[0:6:2]  # the warm training images
    assert region["shares"] == sorted(region["shares"], reverse=True) and 0 <= region["shares"][0] <= 1
    items, summary, page, ids = explore.gallery_page(tiny.deps, tiny.name, ANY, ANY, ANY, "any", False, "Name", 0,
                                                     region)
    assert ids == region["ids"] and page == 0 and "Ranked by row 1, column 1" in summary
    assert items[0][1].startswith(f"#{ids[0]} ") and items[0][1].endswith("% here")
    assert mean_maps.select(tiny.deps, state, "1", None)[2] != ""  # no cell: the map's peak cell
    assert not mean_maps.is_stale(tiny.deps, state, tiny.name)
    from store.runs import register_checkpoint

    with session_scope(tiny.deps.engine) as session:  # a fine-tuned model becomes the active one
        row = register_checkpoint(session, project_id=1, path="elsewhere.pt", sha256="f" * 64, arch="bcos_small",
                                  activate=True)
        assert row.id != tiny.checkpoint_id
    assert mean_maps.is_stale(tiny.deps, state, tiny.name)  # Explore then shows the active model's maps


def test_mean_maps_made_before_an_import_are_stale(tiny: TinyProject) -> None:
    from store.projects import ImageInput, add_images, get_project
    from ui.handlers import mean_maps

    assert mean_maps.show(tiny.deps, tiny.name, "val", "", compute=True)[0] is not None
    with session_scope(tiny.deps.engine) as session:  # one more validation image
        extra = ImageInput(path="images/extra.png", sha256="e" * 64, width=SIZE, height=SIZE, split="val")
        add_images(session, project_id=get_project(session, tiny.name).id, images=[extra])
    picture, status, state, _ = mean_maps.show(tiny.deps, tiny.name, "val", "", compute=False)
    assert picture is None and state is None and "Show mean maps" in status  # recompute, never show stale maps


def test_outline_draws_the_ground_truth_on_the_overlay_and_the_colour_panel_says_why(tiny: TinyProject) -> None:
    image = tiny.image_ids[0]
    value, snap, _, _ = annotate.load_annotation(tiny.deps, tiny.name, image)
    annotate.save_annotation(tiny.deps, tiny.name, snap, _with_box(value), "alice")
    plain, colour, _, info = explain.explain_image(tiny.deps, tiny.name, image, "B-cos", "Input", "warm")
    outlined, _, _, outlined_info = explain.explain_image(tiny.deps, tiny.name, image, "B-cos", "Input", "warm", True)
    assert "-gt-" in outlined and "Ground truth: **warm**, 1 box outlined" in outlined_info
    with PILImage.open(plain) as a, PILImage.open(outlined) as b:
        assert b.width == a.width and b.height > a.height  # the ground-truth line under the legend
        assert a.height > a.width  # the legend under the (square) image
        top = np.asarray(b.convert("RGB"))[:a.width]
        assert (top == (255, 214, 0)).all(axis=-1).any()  # the yellow outline
    gradcam = explain.explain_image(tiny.deps, tiny.name, image, "GradCAM", "Mid3", "warm")
    assert "Choose Method: B-cos" in gradcam[3] and Path(gradcam[1]).name.startswith("note-")
    assert "No colour view" not in info and not Path(colour).name.startswith("note-")


def test_explanations_are_cached_per_image_size(tiny: TinyProject) -> None:
    from dataclasses import replace

    from services.explain_requests import explain_target

    request = explain_target(tiny.deps.engine, tiny.name, tiny.image_ids[0], data_dir=tiny.deps.data_dir).request
    small = tiny.deps.explanations.explain(request, "bcos", "input", 0)
    larger = tiny.deps.explanations.explain(replace(request, image_size=request.image_size * 2), "bcos", "input", 0)
    assert small.key != larger.key and small.overlay_path != larger.overlay_path  # a new size is a new explanation


def test_explore_without_a_project_says_how_to_get_one(tmp_path: Path) -> None:
    """An install with no project: the gallery is empty and says where projects come from, no error toast."""
    from services.settings import Settings  # only this test builds its own deps (no fixture project)
    from ui.deps import build_deps

    deps = build_deps(Settings(data_dir=tmp_path / "data"))
    assert explore.project_names(deps) == []
    items, summary, page, ids = explore.gallery_page(deps, None, ANY, ANY, ANY, "any", False, "Name", 0)
    assert (items, page, ids) == ([], 0, [])
    assert "No project yet" in summary and "Data" in summary and "app.py demo" in summary
