"""The validation-size warning in a real browser: the Fine-tune tab shows it for a project whose validation split is
too small to judge a run and hides it for a big one; the Data tab's button carves a bigger split and the warning goes.

Playwright drives Debian's Chromium (never `playwright install`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from services import validation_split
from tests.services.test_validation_split import make_project
from tests.ui.browser import expect, expect_patience, require_chromium
from tests.ui.conftest import TinyProject, build_tiny_project, launched

pytestmark = pytest.mark.browser
require_chromium()
patient_expect = expect_patience(20_000)  # 2 shared cores: a first page load can take 10 s

FIXABLE = "<b>birds</b>"  # shown as typed, never as HTML


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TinyProject]]:
    """The app on the tiny project (2 val images) plus "big" (50 val per group) and a fixable 35-image one."""
    tiny = build_tiny_project(tmp_path_factory.mktemp("val-warning") / "data")
    make_project(tiny.deps.engine, "big", val={"light": 50, "dark": 50}, train={"light": 100, "dark": 100})
    make_project(tiny.deps.engine, FIXABLE, val={None: 35}, train={None: 286})
    with launched(tiny.deps) as url:
        yield url, tiny


def pick_project(page, name: str) -> None:
    page.locator("#project input").click()
    page.get_by_role("option", name=name, exact=True).click()
    expect(page.locator("#project input")).to_have_value(name)


def test_the_finetune_tab_warns_for_a_small_split_and_not_for_a_big_one(page, app_url) -> None:
    url, tiny = app_url
    page.goto(url)
    page.get_by_role("tab", name="Fine-tune").click()
    warning = page.locator("#finetune-val-warning")
    expect(warning).to_contain_text(f"Project '{FIXABLE}'")  # on load: the first project, its tags as text
    pick_project(page, tiny.name)
    expect(warning).to_contain_text(f"Project '{tiny.name}': the validation split is too small to judge a run.")
    expect(warning).to_contain_text("Import more images of group")  # 3 training images per group: no carve
    pick_project(page, "big")
    expect(warning).to_be_hidden()
    pick_project(page, FIXABLE)
    expect(warning).to_contain_text(re.compile(r"“Carve a bigger validation split” in the Data tab moves \d+"))
    expect(warning.locator("b")).to_have_count(0)


def test_the_data_tab_button_carves_a_bigger_split_and_the_warning_goes(page, app_url) -> None:
    url, tiny = app_url
    page.goto(url)
    pick_project(page, FIXABLE)
    page.get_by_role("tab", name="Data").click()
    warning, button = page.locator("#data-val-warning"), page.locator("#carve-validation")
    expect(warning).to_contain_text("rests on 35 validation images, fewer than 50")
    button.click()
    expect(page.locator("#carve-validation-status")).to_contain_text(re.compile(r"Moved \d+ training images"))
    expect(warning).to_be_hidden()
    expect(button).to_be_hidden()
    assert not validation_split.check_validation(tiny.deps.engine, FIXABLE).too_small
    page.get_by_role("tab", name="Fine-tune").click()  # the tab checks again when shown
    expect(page.locator("#finetune-val-warning")).to_be_hidden()
