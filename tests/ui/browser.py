"""What the browser test modules share: Playwright's `expect`, the skips, a patient `expect`, and page helpers.

Importing this module skips the importing test module when Playwright is not installed; a browser module
then calls `require_chromium()` (Debian's Chromium, never `playwright install`). Chromium's launch arguments
and the app launched in-process are fixtures of tests/ui/conftest.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from store.db import session_scope
from store.models import Box
from tests.ui.conftest import CHROMIUM, SIZE, TinyProject
from ui.data.display import display_scale

if TYPE_CHECKING:
    from playwright.sync_api import Page

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

SHOWN = display_scale(SIZE, SIZE)  # the editor gets the 32×32 images enlarged 16× (512 px)
EXPECT_TIMEOUT_MS = 5_000  # Playwright's own default for `expect`


def require_chromium() -> None:
    """Skip the calling test module (call it at module level) when Debian's Chromium is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)", allow_module_level=True)


def expect_patience(timeout_ms: int) -> Any:
    """An autouse fixture for the module that binds it (`patient_expect = expect_patience(…)`): `expect` waits up
    to `timeout_ms` for what the page shows (2 shared cores), then Playwright's default again."""

    @pytest.fixture(autouse=True)
    def fixture() -> Iterator[None]:
        expect.set_options(timeout=timeout_ms)
        yield
        expect.set_options(timeout=EXPECT_TIMEOUT_MS)

    return fixture


def open_annotate(page: Page, url: str, tile: int) -> None:
    """Open the app, click gallery tile `tile` (name order), go to Annotate and wait for the editor canvas."""
    page.goto(url)
    page.locator("#gallery button.thumbnail-item, #gallery .thumbnail-item").nth(tile).click()
    expect(page.locator("#image-id input")).not_to_have_value("")
    page.get_by_role("tab", name="Annotate").click()
    expect(page.locator("#annot canvas")).to_be_visible()


def wait_for_editor_label(page: Page, label: str) -> None:
    """Wait until the box editor gives new boxes `label` (the page script tells it the label picked)."""
    page.wait_for_function("(label) => document.querySelector('#annot .annotator-container')"
                           "?.dataset.defaultLabel === label", arg=label)


def drag_box(page: Page, x0: float, y0: float, x1: float, y1: float) -> None:
    """Draw a box given in original image pixels with the mouse; it takes the label picked (no pop-up).

    The editor shows the image enlarged `SHOWN` times, then fits it to the canvas width (never upscaling).
    """
    page.bring_to_front()  # a background tab (two-tab tests) is throttled: drawing there took ~18 s
    page.locator('#annot button[aria-label="Create box"]').click()
    canvas = page.locator("#annot canvas").bounding_box()
    shown_width = SIZE * SHOWN
    scale = min(1.0, canvas["width"] / shown_width) * SHOWN  # screen pixels per original pixel
    left = canvas["x"] + (canvas["width"] - shown_width * scale / SHOWN) / 2
    page.mouse.move(left + x0 * scale, canvas["y"] + y0 * scale)
    page.mouse.down()
    page.mouse.move(left + x1 * scale, canvas["y"] + y1 * scale, steps=8)
    page.mouse.up()


def live_boxes(tiny: TinyProject, image_id: int) -> list[tuple[str, str, tuple[float, ...]]]:
    """The image's boxes not deleted, oldest first: `(class, author, (x0, y0, x1, y1))` in original pixels."""
    with session_scope(tiny.deps.engine) as session:
        rows = session.scalars(select(Box).where(Box.image_id == image_id, Box.deleted_at.is_(None))
                               .order_by(Box.id)).all()
        return [(b.klass.name, b.author, (b.x0, b.y0, b.x1, b.y1)) for b in rows]


def queued_run_id(page: Page) -> int:
    """The id of the run the Fine-tune button just queued, once the page says so ("Queued run N …")."""
    line = page.locator("#train-status textarea")
    expect(line).to_have_value(re.compile(r"Queued run \d+"))
    return int(re.search(r"Queued run (\d+)", line.input_value()).group(1))


def wait_for_run_end(page: Page, run_id: int, timeout_ms: int) -> str:
    """Wait until the Fine-tune tab shows run `run_id` (this run, never an earlier one) ended; its status."""
    status = page.locator("#run-status")
    ended = r"(succeeded|failed|cancelled|no improvement — your model is kept|at chance — not learned yet)"
    expect(status).to_have_text(re.compile(rf"^run {run_id}: {ended}"), timeout=timeout_ms)
    return status.inner_text().split(": ", 1)[1].strip()
