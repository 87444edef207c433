"""Real-browser flows (Playwright driving Debian's Chromium; never `playwright install`)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from store.db import session_scope
from tests.ui.browser import (
    drag_box,
    expect,
    expect_patience,
    live_boxes,
    open_annotate,
    queued_run_id,
    require_chromium,
    wait_for_editor_label,
    wait_for_run_end,
)
from tests.ui.conftest import TinyProject

pytestmark = pytest.mark.browser
require_chromium()
patient_expect = expect_patience(20_000)  # 2 shared cores, busy: a save can take seconds


def open_image(page, url: str, tile: int = 0) -> None:
    """Open the app, click a gallery tile, go to Annotate and wait for the editor canvas."""
    open_annotate(page, url, tile)
    # the image's view has arrived (its title names it), not only the editor's canvas
    expect(page.locator("#annot-title")).to_contain_text(f"#{page.locator('#image-id input').input_value()} ")


def draw_box(page, label: str, x0: float, y0: float, x1: float, y1: float) -> None:
    """Draw a box given in original image pixels with the mouse and give it `label` (recipe of TESTING.md).

    The label is picked first ("Label for new boxes"): the editor then gives it to the new box without a pop-up.
    """
    page.bring_to_front()  # a background tab (two-tab test) is throttled: drawing there took ~18 s
    page.locator("#annot-label label", has_text=label).click()
    wait_for_editor_label(page, label)  # the page script told the editor
    drag_box(page, x0, y0, x1, y1)


def live_labels(tiny: TinyProject, image_id: int) -> list[tuple[str, str]]:
    return [(label, author) for label, author, _ in live_boxes(tiny, image_id)]


def live_coords(tiny: TinyProject, image_id: int) -> list[tuple[float, ...]]:
    return [coords for _, _, coords in live_boxes(tiny, image_id)]


def test_draw_a_box_save_and_find_it_in_the_database(page, served: tuple[str, TinyProject]) -> None:
    url, tiny = served
    open_image(page, url, tile=0)
    image_id = int(page.locator("#image-id input").input_value())
    draw_box(page, "warm", 4, 4, 24, 24)
    page.locator("#save-boxes").click()
    expect(page.locator("#annot-status textarea")).to_have_value(re.compile(r"^Saved 1"))
    assert live_labels(tiny, image_id) == [("warm", "local")]
    [coords] = live_coords(tiny, image_id)  # original pixels, not the editor's enlarged ones
    assert coords == pytest.approx((4, 4, 24, 24), abs=0.5)


def test_edit_in_two_tabs_second_save_reports_conflict(page, served: tuple[str, TinyProject]) -> None:
    url, tiny = served
    other = page.context.new_page()
    open_image(page, url, tile=1)
    open_image(other, url, tile=1)
    image_id = int(page.locator("#image-id input").input_value())
    draw_box(page, "warm", 2, 2, 20, 20)
    page.locator("#save-boxes").click()
    expect(page.locator("#annot-status textarea")).to_have_value(re.compile(r"^Saved"))
    draw_box(other, "cool", 6, 6, 28, 28)
    other.locator("#save-boxes").click()
    expect(other.locator("#annot-status textarea")).to_have_value(re.compile(r"^Conflict"))
    assert live_labels(tiny, image_id) == [("warm", "local")]


def test_tiny_fine_tune_reaches_done_and_shows_in_compare(page, served: tuple[str, TinyProject]) -> None:
    url, tiny = served
    page.goto(url)
    page.get_by_role("tab", name="Fine-tune").click()
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Epochs").fill("1")
    page.get_by_label("Batch size").fill("4")
    page.get_by_label("Max steps per epoch (0: all)").fill("1")
    page.locator("#start-training").click()
    # one step on 6 images may or may not beat the start: either ending shows in Compare (a failure does not)
    ended = wait_for_run_end(page, queued_run_id(page), 150_000)
    if ended in ("failed", "cancelled"):  # say why, from the row and its log
        from store.models_runs import TrainingRun

        with session_scope(tiny.deps.engine) as session:
            errors = [(r.id, r.status, r.error) for r in session.scalars(select(TrainingRun))]
        logs = [f.read_text(errors="replace")[-3000:] for f in (tiny.deps.data_dir / "runs").rglob("*.log")]
        pytest.fail(f"the fine-tune did not succeed: {errors}\n{''.join(logs)}")
    expect(page.locator("#train-status textarea")).to_have_value(re.compile(
        r"^Run \d+ succeeded after \d+:\d\d\.$" if ended == "succeeded" else
        r"^Run \d+ ended after \d+:\d\d: (no improvement — your model is kept\. Nothing was activated|at chance — "
        r"not learned yet\. See why below)"))
    page.get_by_role("tab", name="Compare").click()
    page.get_by_role("button", name="Refresh checkpoints").click()
    page.locator("#compare-after input").click()
    expect(page.get_by_role("option", name=re.compile(r"run \d+"))).not_to_have_count(0)
