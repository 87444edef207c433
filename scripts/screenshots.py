"""Screenshots of every view for the README: drives the real app in headless Chromium.

    python scripts/screenshots.py [--out docs] [--short]

In a temp data dir it builds the demo project with the shipped baseline `checkpoints/demo-baseline.pt`
and evaluates it on the test split (when the baseline exists; otherwise a small demo-like project
with a random-weight checkpoint and made-up evaluation rows), serves the app in-process, fine-tunes
through the UI (one click on the recommended settings; `--short`: a few steps) and writes
docs/{explore,explain,annotate,finetune,compare,models,import}.png at 1440×900 (import.png: a zip of class
folders with groups.csv and boxes.csv imported in the Data tab as project ``birds``).

Imports of the app sit inside functions: `REPO` must be on sys.path first, and `--help` stays instant.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import socket
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

log = logging.getLogger("screenshots")
BASELINE = REPO / "checkpoints" / "demo-baseline.pt"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-default-apps", "--disable-extensions"]


def build_project(data_dir: Path) -> None:
    """The demo project with its shipped baseline, evaluated on test; a stand-in when there is no baseline."""
    if not BASELINE.exists():
        log.warning("no %s yet: screenshots use a demo-like project with a random-weight model", BASELINE)
        build_stand_in(data_dir)
        return
    from services.demo import DEMO_PROJECT, create_demo_project
    from services.evaluation import evaluate_checkpoint
    from services.settings import Settings
    from store.db import session_scope
    from store.projects import get_project
    from store.runs import active_checkpoint
    from ui.deps import build_deps

    deps = build_deps(Settings(data_dir=data_dir))
    create_demo_project(deps.engine, deps.settings, baseline=BASELINE)
    with session_scope(deps.engine) as session:
        project = get_project(session, DEMO_PROJECT)
        evaluate_checkpoint(session, deps.settings, project, active_checkpoint(session, project.id), split="test")


def build_stand_in(data_dir: Path) -> None:
    """A small demo-like project: synthetic images with boxes, a random B-cos checkpoint, an evaluation."""
    from core.bcos import build_model
    from core.data import SyntheticConfig, generate_demo_dataset, load_manifest
    from core.train import file_sha256, save_checkpoint
    from services.settings import Settings
    from store.boxes import add_box
    from store.db import session_scope
    from store.projects import ImageInput, add_images, create_project, set_image_labels
    from store.runs import EvaluationImageResult, record_evaluation, register_checkpoint
    from ui.deps import build_deps

    images_dir = data_dir / "demo"
    generate_demo_dataset(images_dir, SyntheticConfig(train_size=64, val_size=16, test_size=16))
    manifest = load_manifest(images_dir)
    deps = build_deps(Settings(data_dir=data_dir))
    ckpt = save_checkpoint(data_dir / "checkpoints", build_model("bcos_small", 2), classes=manifest["classes"])
    with session_scope(deps.engine) as session:
        project = create_project(session, name="demo", task="single_label", image_size=64, classes=manifest["classes"])
        entries = manifest["images"]
        inputs = [ImageInput(path=f"demo/{e['file']}", sha256=hashlib.sha256((images_dir / e["file"]).read_bytes())
                             .hexdigest(), width=64, height=64, split=e["split"], group=e["group"]) for e in entries]
        images = [img for img, _ in add_images(session, project_id=project.id, images=inputs)]
        for entry, image in zip(entries, images):
            set_image_labels(session, image_id=image.id, class_names=[manifest["classes"][entry["label"]]])
            if entry["split"] != "train" or entry["imported_box"]:
                x0, y0, x1, y1 = entry["box"]
                add_box(session, image_id=image.id, label=manifest["classes"][entry["label"]], x0=x0, y0=y0, x1=x1,
                        y1=y1, author="importer", source="imported")
        row = register_checkpoint(session, project_id=project.id, path=str(ckpt), sha256=file_sha256(ckpt),
                                  arch="bcos_small", activate=True, note="baseline")
        results = [EvaluationImageResult(image_id=img.id, correct=bool(e["aligned"]), score=0.5 + (i % 10) / 20,
                                         epg=(i * 37 % 100) / 100, predicted_index=e["label"])
                   for i, (e, img) in enumerate(zip(entries, images))]
        record_evaluation(session, checkpoint_id=row.id, split="test", metrics={"accuracy": 0.74, "epg": 0.31},
                          results=results)


def shoot(url: str, out: Path, short: bool = False) -> None:
    """Visit each tab (fine-tuning briefly on the way) and save a screenshot of each."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(url)
        shoot_explore(page, out)
        shoot_explain_and_annotate(page, out)
        shoot_finetune(page, out, short)
        shoot_compare(page, out)
        page.get_by_role("tab", name="Models").click()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "models.png"), full_page=True)
        shoot_data(page, out)
        browser.close()


def shoot_explore(page: Any, out: Path) -> None:
    """The mean maps of the val split, the badge's cell of "warm/cue-warm" ranking the gallery below them."""
    from playwright.sync_api import expect

    expect(page.locator("#gallery .thumbnail-item img").first).to_be_visible(timeout=30_000)
    page.locator("#mean-show").click()
    expect(page.locator("#mean-maps img")).to_be_visible(timeout=120_000)
    page.locator("#mean-map input").click()
    page.get_by_role("option", name=re.compile(r"^warm.cue-warm")).click()
    page.locator("#mean-cell input").click()
    page.get_by_role("option", name="row 1, column 1").click()
    expect(page.locator("#gallery-summary")).to_contain_text("Ranked by", timeout=30_000)
    page.wait_for_timeout(2500)
    page.locator("#mean-maps-section").scroll_into_view_if_needed()
    page.evaluate("document.querySelector('#mean-maps-section').scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "explore.png"))
    page.locator("#mean-clear").click()  # the next views start from the whole gallery
    page.evaluate("window.scrollTo(0, 0)")


def shoot_explain_and_annotate(page: Any, out: Path) -> None:
    """An image with a box: its explanation, then the box editor."""
    from playwright.sync_api import expect

    page.locator("#gallery .thumbnail-item").nth(1).click()
    page.get_by_role("tab", name="Explain").click()
    expect(page.locator("#explain-info")).to_contain_text("explaining", timeout=30_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(out / "explain.png"))
    page.get_by_role("tab", name="Annotate").click()
    expect(page.locator("#annot canvas")).to_be_visible()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(out / "annotate.png"), full_page=True)


def shoot_finetune(page: Any, out: Path, short: bool = False) -> None:
    """One click on the recommended settings (or, with `short`, 2 epochs of 6 steps), shot when it has finished."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Fine-tune").click()
    if short:
        page.get_by_text("Advanced settings").click()
        page.get_by_label("Epochs").fill("2")
        page.get_by_label("Max steps per epoch (0: all)").fill("6")
    page.locator("#start-training").click()
    expect(page.locator("#run-status")).to_have_text(re.compile(r"succeeded|failed|cancelled"), timeout=600_000)
    if short:
        page.get_by_text("Advanced settings").click()  # fold it again
    page.wait_for_timeout(2500)
    page.screenshot(path=str(out / "finetune.png"), full_page=True)


def shoot_compare(page: Any, out: Path) -> None:
    """The baseline against the fine-tune's best checkpoint."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Compare").click()
    page.get_by_role("button", name="Refresh checkpoints").click()
    page.wait_for_timeout(1000)
    page.locator("#compare-run").click()
    expect(page.locator("#compare-note")).to_contain_text("Before", timeout=120_000)
    page.wait_for_timeout(2000)
    page.screenshot(path=str(out / "compare.png"), full_page=True)


def own_data_files(folder: Path) -> tuple[Path, Path, Path]:
    """A user's upload: a zip of 24 demo-like images in class folders, groups.csv and boxes.csv (half boxed)."""
    from core.data import SyntheticConfig, generate_demo_dataset, load_manifest  # torch: after sys.path is set

    source = folder / "generated"
    generate_demo_dataset(source, SyntheticConfig(seed=7, train_size=20, val_size=2, test_size=2),
                          workers=1)
    entries = load_manifest(source)["images"]
    archive, groups, boxes = folder / "photos.zip", folder / "groups.csv", folder / "boxes.csv"
    group_lines, box_lines = ["file,group"], ["file,label,x0,y0,x1,y1"]
    with zipfile.ZipFile(archive, "w") as zf:
        for i, entry in enumerate(entries):
            label = entry["group"].split("/")[0]
            name = f"{label}/{i:03d}.png"
            zf.write(source / entry["file"], f"photos/{name}")
            group_lines.append(f"{name},{entry['group']}")
            if i % 2 == 0:
                box_lines.append(f"{name},{label}," + ",".join(str(v) for v in entry["box"]))
    groups.write_text("\n".join(group_lines) + "\n", encoding="utf-8")
    boxes.write_text("\n".join(box_lines) + "\n", encoding="utf-8")
    return archive, groups, boxes


def shoot_data(page: Any, out: Path) -> None:
    """The Data tab after importing a user's zip of class folders with its two CSVs into a new project."""
    from playwright.sync_api import expect  # optional dependency: only this script and the browser tests need it

    archive, groups, boxes = own_data_files(Path(tempfile.mkdtemp(prefix="screenshots-upload-")))
    page.get_by_role("tab", name="Data").click()
    page.locator("#import-zip input[type=file]").set_input_files(str(archive))
    page.locator("#import-groups input[type=file]").set_input_files(str(groups))
    page.locator("#import-boxes input[type=file]").set_input_files(str(boxes))
    page.locator("#import-project textarea, #import-project input").first.fill("birds")
    page.locator("#import-run").click()
    expect(page.locator("#import-report textarea")).to_have_value(re.compile("images added"), timeout=120_000)
    page.wait_for_timeout(1500)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(out / "import.png"))


def main() -> int:
    """Build the project, serve it, take the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--short", action="store_true",
                        help="fine-tune for 2 epochs of 6 steps instead of the one-click defaults (about 1 minute)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ui.deps import build_deps
    from ui.layout import build_demo, launch_options

    data_dir = Path(tempfile.mkdtemp(prefix="screenshots-")) / "data"
    build_project(data_dir)
    from services.settings import Settings

    settings = Settings(data_dir=data_dir)
    demo = build_demo(build_deps(settings))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_options(settings))
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        shoot(f"http://127.0.0.1:{port}/", args.out, args.short)
    finally:
        demo.close()
    log.info("wrote screenshots to %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
