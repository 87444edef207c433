"""Issues 12 and 23 in a real browser, no Python in the user's path: a zip of real scans in class folders and two
CSVs become a project (Data tab, which warns that its validation split is too small to judge a run), a first model
is made (Models: New model), trained without boxes (Fine-tune, λ 0: the run says why it stopped and what it kept),
activated (Models: select a row, Activate), an image explained (Explain), the model fine-tuned with boxes, and the
two compared (Compare). The images are real: scikit-learn's bundled copy of the UCI handwritten digits (1 and 7).
Tiny on purpose (24 images of 32 px, 1 epoch of 2 steps): two busy cores run it.

Playwright drives Debian's Chromium (never `playwright install`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from services.settings import Settings
from tests.ui.browser import expect, expect_patience, queued_run_id, require_chromium, wait_for_run_end
from tests.ui.conftest import launched
from tests.ui.test_data_handlers import write_zip
from ui.deps import AppDeps, build_deps

pytestmark = pytest.mark.browser
require_chromium()
patient_expect = expect_patience(30_000)  # 2 shared cores
RUN_TIMEOUT_MS = 300_000  # a training process starts python, torch and the data on two shared cores


@pytest.fixture()
def empty_app(tmp_path: Path) -> Iterator[tuple[str, AppDeps]]:
    """The app on an empty data dir (no project at all), launched in-process: `(url, deps)`."""
    deps = build_deps(Settings(data_dir=tmp_path / "data"))
    with launched(deps) as url:
        yield url, deps


def digit_files(per_class: int = 12) -> dict[str, bytes]:
    """`{path in the zip: bytes}`: real scans, `one/*.png` and `seven/*.png` (the UCI digits 1 and 7 that
    scikit-learn ships, 8×8 enlarged 4× onto a 32×32 background, light or dark: the group), groups.csv, and
    boxes.csv with the ink's box on every 2nd image."""
    scans = pytest.importorskip("sklearn.datasets").load_digits()
    files: dict[str, bytes] = {}
    groups, boxes = ["file,group"], ["file,label,x0,y0,x1,y1"]
    for digit, label in ((1, "one"), (7, "seven")):
        for i, scan in enumerate(scans.images[scans.target == digit][:per_class]):
            ink = np.kron(scan / 16.0, np.ones((4, 4)))[..., None]
            pixels = (225 if i % 2 else 150) * (1 - ink) + 20 * ink
            out = io.BytesIO()
            PILImage.fromarray(np.repeat(pixels, 3, axis=2).astype(np.uint8)).save(out, format="PNG")
            name = f"{label}/{label}_{i:02d}.png"
            files[name] = out.getvalue()
            groups.append(f"{name},{'light' if i % 2 else 'dark'}")
            if i % 2 == 0:
                ys, xs = np.nonzero(ink[..., 0] > 0.2)
                boxes.append(f"{name},{label},{xs.min()},{ys.min()},{xs.max() + 1},{ys.max() + 1}")
    files["groups.csv"], files["boxes.csv"] = "\n".join(groups).encode(), "\n".join(boxes).encode()
    return files


def user_files(folder: Path) -> tuple[Path, Path, Path]:
    """What the user has: photos.zip (photos/<class>/*.png), groups.csv and boxes.csv beside it."""
    files = digit_files(12)
    archive = write_zip(folder / "photos.zip", {f"photos/{k}": v for k, v in files.items() if k.endswith(".png")})
    groups, boxes = folder / "groups.csv", folder / "boxes.csv"
    groups.write_bytes(files["groups.csv"])
    boxes.write_bytes(files["boxes.csv"])
    return archive, groups, boxes


def upload(page, elem_id: str, file: Path) -> None:
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(file))
    # the upload itself: the server's link to the stored file (the shown name is split into spans, "photos .zip")
    expect(page.locator(f"#{elem_id} a[href$='/{file.name}']")).to_be_visible()


def train(page, deps: AppDeps, lam: str) -> None:
    """Fine-tune tab: λ, 1 epoch of at most 2 steps of 4 images; start and wait until the run ends (it must succeed)."""
    page.get_by_role("tab", name="Fine-tune").click()
    advanced = page.locator("#setting-lam input")
    if not advanced.is_visible():
        page.get_by_text("Advanced settings").click()
    advanced.fill(lam)
    page.locator("#setting-epochs input").fill("1")
    page.locator("#setting-batch_size input").fill("4")
    page.locator("#setting-max_steps_per_epoch input").fill("2")
    page.locator("#setting-max_steps_per_epoch input").blur()
    page.locator("#start-training").click()
    # one epoch of 2 steps may or may not beat its start: either ending is fine here (test_finetune_browser.py
    # pins "no improvement"); a failure or a cancel is not
    if wait_for_run_end(page, queued_run_id(page), RUN_TIMEOUT_MS) in ("failed", "cancelled"):  # say why
        logs = [f.read_text(errors="replace")[-3000:] for f in (deps.data_dir / "runs").glob("*.log")]
        pytest.fail(f"the run did not succeed: {page.locator('#train-progress').inner_text()}\n{''.join(logs)}")
    # why it stopped and what it kept, with the run, in plain words
    expect(page.locator("#run-why")).to_contain_text(re.compile(r"stopped: .* after 1 epoch\(s\); kept "))


def test_own_data_to_a_guided_model_without_code(page, empty_app: tuple[str, AppDeps], tmp_path: Path) -> None:
    url, deps = empty_app
    archive, groups, boxes = user_files(tmp_path / "mine")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(url)

    # Data: the zip and both CSVs become a project, which the page then selects
    page.get_by_role("tab", name="Data").click()
    page.locator("#import-run").click()  # nothing chosen yet: the report says what to do
    report = page.locator("#import-report textarea")
    expect(report).to_have_value(re.compile(r"^Nothing imported.*Upload a \.zip", re.S))
    upload(page, "import-zip", archive)
    upload(page, "import-groups", groups)
    upload(page, "import-boxes", boxes)
    page.locator("#import-project textarea").fill("birds")
    page.locator("#import-run").click()
    expect(report).to_have_value(re.compile(r"project birds \(new\): 24 images added"), timeout=60_000)
    expect(report).to_have_value(re.compile(r"12 boxes added.*train: one 10, seven 10", re.S))
    expect(report).to_have_value(re.compile(r"image size 32 px"))
    expect(page.locator("#project input")).to_have_value("birds")
    expect(page.locator("#image-size input")).to_have_value("32")
    # 2 validation images per group cannot judge a run: the Data tab says so with the rule's number
    expect(page.locator("#data-val-warning")).to_contain_text("too small to judge a run")
    expect(report).to_have_value(re.compile(r"fewer than 50"))
    page.reload()  # made after the server started, the project is still offered after a reload
    expect(page.locator("#project input")).to_have_value("birds")

    # Models: a first model, from scratch; it becomes the active one (the project had none)
    page.get_by_role("tab", name="Models").click()
    page.locator("#new-model").click()
    expect(page.locator("#models-status textarea")).to_have_value(
        re.compile(r"New model: checkpoint #1\. bcos_small initialised from scratch.*now the active model"))

    # Fine-tune without boxes (λ 0), then activate the trained checkpoint (the newest row); the tab warns first
    page.get_by_role("tab", name="Fine-tune").click()
    expect(page.locator("#finetune-val-warning")).to_contain_text("too small to judge a run")
    train(page, deps, "0")
    page.get_by_role("tab", name="Models").click()
    newest = page.locator('#models-table [data-testid="cell-0-0"]')
    expect(newest).not_to_have_text("1")  # the run's checkpoint is listed first
    trained = newest.inner_text().strip()
    expect(page.locator("#models-table .eta-bar")).to_have_count(0)  # the list is not being refreshed
    newest.click(timeout=60_000)
    expect(page.locator("#models-selected input")).to_have_value(trained)
    page.locator("#models-activate").click()
    expect(page.locator("#models-status textarea")).to_have_value(
        re.compile(rf"Checkpoint #{trained} \(bcos_small\) is now the active model"))

    # Explain an image: click a tile in Explore, then the Explain tab shows its overlay
    page.get_by_role("tab", name="Explore").click()
    page.locator("#gallery .thumbnail-item").first.click()
    expect(page.locator("#image-id input")).not_to_have_value("")
    page.get_by_role("tab", name="Explain").click()
    expect(page.locator("#overlay img")).to_be_visible(timeout=120_000)

    # Fine-tune with the boxes (the default λ), then compare the guided model with the one before it
    train(page, deps, "0.5")
    page.get_by_role("tab", name="Compare").click()
    page.get_by_role("button", name="Refresh checkpoints").click()
    # the refresh fills both pickers; clicking Compare before it has would send empty picks
    expect(page.locator("#compare-after input")).not_to_have_value("", timeout=60_000)
    expect(page.locator("#compare-before input")).not_to_have_value("", timeout=60_000)
    page.locator("#compare-run").click()
    expect(page.get_by_role("grid", name="Metrics")).to_contain_text("accuracy", timeout=120_000)
    expect(page.get_by_role("grid", name="Metrics")).to_contain_text("EPG (class logit)")
