"""The annotation loop in a real browser (Playwright driving Debian's Chromium; never `playwright install`):
the label picked before drawing (number keys), a conflict that keeps the unsaved boxes and re-applies them,
undo that asks before undoing someone else's change, and Annotate opening on the next image without a box."""

from __future__ import annotations

import re

import pytest

from services import annotations
from services.annotation_queue import next_needing_box
from tests.ui.browser import (
    drag_box,
    expect,
    expect_patience,
    live_boxes,
    open_annotate,
    require_chromium,
    wait_for_editor_label,
)
from tests.ui.conftest import TinyProject

pytestmark = pytest.mark.browser
require_chromium()
patient_expect = expect_patience(20_000)  # 2 shared cores, busy: a save can take seconds


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}}


def open_image(page, url: str, tile: int) -> int:
    """Open the app, click gallery tile `tile` (name order), go to Annotate; the image id."""
    open_annotate(page, url, tile)
    expect(page.locator("#annot-title")).to_contain_text(f"#{page.locator('#image-id input').input_value()} ")
    return int(page.locator("#image-id input").input_value())


def editor_default_label(page) -> str | None:
    """The label the box editor gives new boxes (kept equal to the label picked by the page script)."""
    return page.evaluate("document.querySelector('#annot .annotator-container')?.dataset.defaultLabel ?? null")


def wait_for_label(page, label: str) -> None:
    expect(page.locator("#annot-label input:checked")).to_have_value(label)
    wait_for_editor_label(page, label)


def status(page):
    return page.locator("#annot-status textarea")


def test_annotate_opens_on_the_next_image_needing_a_box(page, served: tuple[str, TinyProject]) -> None:
    url, tiny = served
    expected = next_needing_box(tiny.deps.engine, tiny.name)
    page.goto(url)
    expect(page.get_by_role("tab", name="Annotate")).to_be_visible(timeout=30_000)  # the page has rendered
    expect(page.locator("#image-id input")).to_have_value(re.compile(r"^0?$"))  # nothing picked (gradio shows 0)
    page.get_by_role("tab", name="Annotate").click()
    # the page's first loads (gallery, class maps) run first on a busy machine: allow them time
    expect(page.locator("#image-id input")).to_have_value(str(expected), timeout=60_000)
    expect(page.locator("#annot-title")).to_contain_text(f"#{expected} ")
    expect(page.locator("#annot canvas")).to_be_visible()
    # the whole tool row (ours and the editor's own) is on screen at 1440×900 without scrolling
    for selector in ("#save-boxes", "#save-next", "#undo-boxes", '#annot button[aria-label="Create box"]'):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900, selector


def test_number_key_picks_the_label_of_the_next_box(page, served: tuple[str, TinyProject]) -> None:
    url, tiny = served
    image_id = open_image(page, url, tile=2)  # img_02: labelled "warm", the first class
    wait_for_label(page, "warm")
    page.locator("#annot-title").click()  # focus outside any field
    page.keyboard.press("2")
    wait_for_label(page, "cool")
    drag_box(page, 4, 4, 20, 20)
    page.keyboard.press("Control+s")
    expect(status(page)).to_have_value(re.compile(r"^Saved 1"))
    [(label, author, coords)] = live_boxes(tiny, image_id)
    assert (label, author) == ("cool", "local") and coords == pytest.approx((4, 4, 20, 20), abs=0.5)
    expect(page.locator("#annot-boxes")).to_contain_text("cool")


def test_conflict_keeps_the_unsaved_boxes_and_reapplies_them(page, served: tuple[str, TinyProject]) -> None:
    url, tiny = served
    other = page.context.new_page()
    image_id = open_image(page, url, tile=4)
    assert open_image(other, url, tile=4) == image_id
    drag_box(page, 2, 2, 12, 12)
    page.locator("#save-boxes").click()
    expect(status(page)).to_have_value(re.compile(r"^Saved 1"))
    drag_box(other, 16, 16, 30, 30)
    other.locator("#save-boxes").click()
    expect(status(other)).to_have_value(re.compile(r"^Conflict"))
    expect(other.locator("#pending-panel")).to_be_visible()  # the unsaved box is still shown, beside the stored one
    expect(other.locator("#annot-pending canvas")).to_be_visible()
    assert len(live_boxes(tiny, image_id)) == 1
    other.locator("#reapply-edit").click()
    expect(status(other)).to_have_value(re.compile(r"^Re-applied 1"))
    other.locator("#save-boxes").click()
    expect(status(other)).to_have_value(re.compile(r"^Saved 1"))
    expect(other.locator("#pending-panel")).to_be_hidden()
    coords = sorted(c for _, _, c in live_boxes(tiny, image_id))
    assert coords == [pytest.approx((2, 2, 12, 12), abs=0.5), pytest.approx((16, 16, 30, 30), abs=0.5)]


def test_undo_of_someone_elses_change_asks_first(page, served: tuple[str, TinyProject]) -> None:
    url, tiny = served
    image_id = tiny.image_ids[5]
    loaded = annotations.load_boxes(tiny.deps.engine, tiny.name, image_id, data_dir=tiny.deps.data_dir)
    annotations.save_boxes(tiny.deps.engine, tiny.name, loaded.snapshot, [("cool", (1, 1, 9, 9))], author="bob",
                           data_dir=tiny.deps.data_dir)  # another user's save
    assert open_image(page, url, tile=5) == image_id
    page.locator("#undo-boxes").click()
    expect(status(page)).to_have_value(re.compile(r"newest change is bob's .*Click Undo again to confirm"))
    expect(page.locator("#undo-boxes")).to_have_text("Confirm undo")
    assert [a for _, a, _ in live_boxes(tiny, image_id)] == ["bob"]  # nothing undone yet
    page.locator("#undo-boxes").click()
    expect(status(page)).to_have_value(re.compile(r"^undone the last change by bob"))
    assert live_boxes(tiny, image_id) == []
    expect(page.locator("#undo-boxes")).to_have_text("Undo my last save")


def test_a_stale_tabs_undo_does_not_remove_another_tabs_box(page, served: tuple[str, TinyProject]) -> None:
    url, tiny = served
    image_id = open_image(page, url, tile=3)
    drag_box(page, 3, 3, 13, 13)
    page.locator("#save-boxes").click()
    expect(status(page)).to_have_value(re.compile(r"^Saved 1"))
    other = page.context.new_page()
    open_image(other, url, tile=3)  # sees the saved box; then the first tab saves a second one
    drag_box(page, 18, 18, 28, 28)
    page.locator("#save-boxes").click()
    expect(status(page)).to_have_value(re.compile(r"^Saved 1"))
    other.bring_to_front()
    other.locator("#undo-boxes").click()
    expect(status(other)).to_have_value(re.compile(r"^Conflict: .*changed since you loaded it.*Nothing was undone"))
    assert len(live_boxes(tiny, image_id)) == 2


def test_a_box_drawn_right_after_a_label_key_is_kept(page, served: tuple[str, TinyProject]) -> None:
    url, tiny = served
    image_id = open_image(page, url, tile=1)  # img_01: labelled "cool"
    wait_for_label(page, "cool")
    page.locator("#annot-title").click()  # focus outside any field
    page.keyboard.press("1")
    drag_box(page, 5, 5, 25, 25)  # at once: the page script may still be telling the editor the new label
    wait_for_label(page, "warm")
    page.keyboard.press("Control+s")
    expect(status(page)).to_have_value(re.compile(r"^Saved 1"))  # the drag was drawn, not swallowed
    [(label, author, coords)] = live_boxes(tiny, image_id)
    assert (label, author) == ("warm", "local") and coords == pytest.approx((5, 5, 25, 25), abs=0.5)
