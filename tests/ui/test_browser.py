"""Real-browser flows (Playwright driving Debian's Chromium; never `playwright install`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from store.db import session_scope
from store.models import Box
from tests.ui.conftest import SIZE, TinyProject
from ui.data.display import display_scale

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-default-apps", "--disable-extensions"]
REPO = Path(__file__).resolve().parents[2]
SHOWN = display_scale(SIZE, SIZE)  # the editor gets the 32×32 images enlarged 16× (512 px)

if not Path(CHROMIUM).exists():
    pytest.skip("Debian's Chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


def open_image(page, url: str, tile: int = 0) -> None:
    """Open the app, click a gallery tile, go to Annotate and wait for the editor canvas."""
    page.goto(url)
    page.locator("#gallery button.thumbnail-item, #gallery .thumbnail-item").nth(tile).click()
    expect(page.locator("#image-id input")).not_to_have_value("")
    page.get_by_role("tab", name="Annotate").click()
    expect(page.locator("#annot canvas")).to_be_visible()
    page.wait_for_timeout(500)


def draw_box(page, label: str, x0: float, y0: float, x1: float, y1: float) -> None:
    """Draw a box given in original image pixels with the mouse and give it `label` (recipe of TESTING.md).

    The label is picked first ("Label for new boxes"): the editor then gives it to the new box without a pop-up.
    The editor shows the image enlarged `SHOWN` times, then fits it to the canvas width (never upscaling).
    """
    page.bring_to_front()  # a background tab (two-tab test) is throttled: drawing there took ~18 s
    page.locator("#annot-label label", has_text=label).click()
    page.wait_for_function("(label) => document.querySelector('#annot .annotator-container')"
                           "?.dataset.defaultLabel === label", arg=label)  # the page script told the editor
    page.locator('#annot button[aria-label="Create box"]').click()
    canvas = page.locator("#annot canvas").bounding_box()
    shown_width = SIZE * SHOWN
    scale = min(1.0, canvas["width"] / shown_width) * SHOWN  # screen pixels per original pixel
    left = canvas["x"] + (canvas["width"] - shown_width * scale / SHOWN) / 2
    page.mouse.move(left + x0 * scale, canvas["y"] + y0 * scale)
    page.mouse.down()
    page.mouse.move(left + x1 * scale, canvas["y"] + y1 * scale, steps=8)
    page.mouse.up()


def live_boxes(tiny: TinyProject, image_id: int) -> list[tuple[str, str]]:
    with session_scope(tiny.deps.engine) as session:
        rows = session.scalars(select(Box).where(Box.image_id == image_id, Box.deleted_at.is_(None))).all()
        return [(b.klass.name, b.author) for b in rows]


def live_coords(tiny: TinyProject, image_id: int) -> list[tuple[float, float, float, float]]:
    with session_scope(tiny.deps.engine) as session:
        rows = session.scalars(select(Box).where(Box.image_id == image_id, Box.deleted_at.is_(None))).all()
        return [(b.x0, b.y0, b.x1, b.y1) for b in rows]


def test_draw_a_box_save_and_find_it_in_the_database(page, served: tuple[str, TinyProject]) -> None:
    url, tiny = served
    open_image(page, url, tile=0)
    image_id = int(page.locator("#image-id input").input_value())
    draw_box(page, "warm", 4, 4, 24, 24)
    page.locator("#save-boxes").click()
    expect(page.locator("#annot-status textarea")).to_have_value(re.compile(r"^Saved 1"))
    assert live_boxes(tiny, image_id) == [("warm", "local")]
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
    assert live_boxes(tiny, image_id) == [("warm", "local")]


def test_tiny_fine_tune_reaches_done_and_shows_in_compare(page, served: tuple[str, TinyProject]) -> None:
    if not (REPO / "services" / "commands" / "train.py").exists():
        pytest.skip("needs the lead's `python app.py train` (services/commands/train.py)")
    url, tiny = served
    page.goto(url)
    page.get_by_role("tab", name="Fine-tune").click()
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Epochs").fill("1")
    page.get_by_label("Batch size").fill("4")
    page.get_by_label("Max steps per epoch (0: all)").fill("1")
    page.locator("#start-training").click()
    expect(page.locator("#train-status textarea")).to_have_value(re.compile(r"Queued run \d+"))
    expect(page.locator("#run-status")).to_have_text(re.compile(r"succeeded|failed|cancelled"), timeout=150_000)
    if "succeeded" not in page.locator("#run-status").inner_text():  # say why, from the run row and its log
        from store.models_runs import TrainingRun

        with session_scope(tiny.deps.engine) as session:
            errors = [(r.id, r.status, r.error) for r in session.scalars(select(TrainingRun))]
        logs = [f.read_text(errors="replace")[-3000:] for f in (tiny.deps.data_dir / "runs").rglob("*.log")]
        pytest.fail(f"the fine-tune did not succeed: {errors}\n{''.join(logs)}")
    page.get_by_role("tab", name="Compare").click()
    page.get_by_role("button", name="Refresh checkpoints").click()
    page.locator("#compare-after input").click()
    expect(page.get_by_role("option", name=re.compile(r"run \d+"))).not_to_have_count(0)
