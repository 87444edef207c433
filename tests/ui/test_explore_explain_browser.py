"""Explore and Explain in a real browser: filters with counts on first load, the mean maps and a click that
ranks the gallery, the legend and the ground-truth outline on the explanation overlay.

Playwright drives Debian's Chromium (never `playwright install`).
"""

from __future__ import annotations

import re

import pytest

from services.mean_map_pictures import GAP
from tests.ui.browser import expect, expect_patience, require_chromium
from tests.ui.conftest import TinyProject

pytestmark = pytest.mark.browser
require_chromium()
patient_expect = expect_patience(20_000)  # 2 shared cores: a first page load can take 10 s


def choose(page, elem_id: str, option: str) -> None:
    """Pick `option` (its label as shown) in the dropdown `#elem_id`."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def click_picture(page, selector: str, x: float, y: float) -> None:
    """Click the picture in `selector` at (`x`, `y`) of its own pixels (shown centred, scaled to fit; Gradio's
    `object-fit: scale-down` never enlarges it)."""
    image = page.locator(f"{selector} img")
    image.evaluate("e => e.decode()")  # loaded: its natural size is known and it no longer moves
    box = image.bounding_box()
    width, height, fit = image.evaluate("e => [e.naturalWidth, e.naturalHeight, getComputedStyle(e).objectFit]")
    scale = min(box["width"] / width, box["height"] / height, 1.0 if fit == "scale-down" else float("inf"))
    left, top = box["x"] + (box["width"] - width * scale) / 2, box["y"] + (box["height"] - height * scale) / 2
    page.mouse.click(left + x * scale, top + y * scale)


def picture_colours(page, selector: str, first_row: int) -> set[tuple[int, int, int]]:
    """The colours of the picture in `selector` from pixel row `first_row` down (the legend under the image)."""
    return {tuple(c) for c in page.locator(f"{selector} img").evaluate(
        """(e, row) => { const c = document.createElement('canvas'); c.width = e.naturalWidth;
           c.height = e.naturalHeight; const g = c.getContext('2d'); g.drawImage(e, 0, 0);
           const d = g.getImageData(0, row, c.width, c.height - row).data; const out = [];
           for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2]]); return out; }""", first_row)}


def test_filters_are_filled_on_first_load_with_counts_and_filter(page, served: tuple[str, TinyProject]) -> None:
    url, _ = served
    page.goto(url)
    expect(page.locator("#gallery-summary")).to_contain_text("of 8")
    tiles = page.locator("#gallery .thumbnail-item img")
    expect(tiles).to_have_count(8)
    page.wait_for_function("() => [...document.querySelectorAll('#gallery .thumbnail-item img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")  # served in place, and they load
    page.locator("#filter-split input").click()
    expect(page.get_by_role("option", name="train (6)", exact=True)).to_be_visible()
    page.get_by_role("option", name="val (2)", exact=True).click()
    expect(page.locator("#gallery-summary")).to_contain_text("of 2")
    choose(page, "filter-class", "cool (4)")
    expect(page.locator("#gallery-summary")).to_contain_text("of 1")
    page.locator("#filter-group input").click()
    expect(page.get_by_role("option", name="warm/g (4)", exact=True)).to_be_visible()
    page.keyboard.press("Escape")
    page.get_by_role("tab", name="Explain").click()  # its class list is filled on load too
    page.locator("#explain-class input").click()
    expect(page.get_by_role("option", name="cool", exact=True)).to_be_visible()


def test_mean_maps_show_and_a_click_on_a_cell_ranks_the_gallery(page, served: tuple[str, TinyProject]) -> None:
    url, _ = served
    page.goto(url)
    expect(page.locator("#mean-split input")).to_have_value("val (2)")
    page.locator("#mean-show").click()
    expect(page.locator("#mean-status")).to_contain_text("Mean over all 2 val images", timeout=60_000)
    expect(page.locator("#mean-maps img")).to_be_visible()
    click_picture(page, "#mean-maps", GAP + 4, GAP + 4)  # the top-left cell of the first map (class warm)
    expect(page.locator("#mean-map input")).to_have_value(re.compile(r"^warm · all"))
    expect(page.locator("#mean-cell input")).to_have_value("row 1, column 1")
    expect(page.locator("#gallery-summary")).to_contain_text("Ranked by row 1, column 1")
    expect(page.locator("#gallery-summary")).to_contain_text("of 1")
    expect(page.locator("#gallery .thumbnail-item")).to_have_count(1)
    choose(page, "mean-cell", "row 4, column 4")  # the same map, another cell, from the keyboard-friendly list
    expect(page.locator("#gallery-summary")).to_contain_text("Ranked by row 4, column 4")
    page.locator("#mean-clear").click()
    expect(page.locator("#gallery-summary")).to_contain_text("of 8")


def test_the_explanation_overlay_has_a_legend_and_an_optional_outline(page, served: tuple[str, TinyProject]) -> None:
    url, _ = served
    page.goto(url)
    page.locator("#gallery .thumbnail-item").first.click()
    expect(page.locator("#image-id input")).not_to_have_value("")
    page.get_by_role("tab", name="Explain").click()
    overlay = page.locator("#overlay img")
    expect(overlay).to_be_visible(timeout=60_000)
    overlay.evaluate("e => e.decode()")
    width, height = overlay.evaluate("e => [e.naturalWidth, e.naturalHeight]")
    assert height > width  # the (square) image with the legend under it
    legend = picture_colours(page, "#overlay", width)
    assert (214, 39, 40) in legend and (31, 119, 180) in legend  # the bar: red = for the class, blue = against
    expect(page.locator("#explain-info")).not_to_contain_text("Ground truth")
    plain = overlay.get_attribute("src")
    page.locator("#explain-outline input").check()
    expect(page.locator("#explain-info")).to_contain_text("Ground truth: warm")
    expect(overlay).not_to_have_attribute("src", plain or "")
    choose(page, "explain-method", "GradCAM")  # no colour view: the panel and the info say why
    expect(page.locator("#explain-info")).to_contain_text("Choose Method: B-cos")


def test_the_decision_map_is_one_click_beside_the_class_map(page, served: tuple[str, TinyProject]) -> None:
    url, _ = served
    page.goto(url)
    page.locator("#gallery .thumbnail-item").first.click()
    expect(page.locator("#image-id input")).not_to_have_value("")
    page.get_by_role("tab", name="Explain").click()
    info, overlay = page.locator("#explain-info"), page.locator("#overlay img")
    expect(info).to_contain_text("(class logit)")  # a single-label project: the choice is offered
    expect(overlay).to_be_visible()
    plain = overlay.get_attribute("src")
    page.locator("#explain-score").get_by_label("decision (class vs the runner-up)").check()
    expect(info).to_contain_text(re.compile(r"the decision “(warm|cool)” over “(warm|cool)” \(the runner-up\)"))
    expect(overlay).not_to_have_attribute("src", plain or "")
