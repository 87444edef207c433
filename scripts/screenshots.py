"""Screenshots of every view for the README: drives the real app in headless Chromium.

    python scripts/screenshots.py [--out docs]

Builds a small demo-like project (synthetic shortcut images, a B-cos checkpoint, imported boxes)
in a temp data dir, serves the app in-process and writes docs/{explore,explain,annotate,finetune,
compare,models}.png.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import socket
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

log = logging.getLogger("screenshots")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-default-apps", "--disable-extensions"]


def build_project(data_dir: Path) -> None:
    """A 'demo' project: synthetic images with boxes, a checkpoint (the shipped one when present), an evaluation."""
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
    shipped = sorted((REPO / "checkpoints").glob("*.pt"))
    ckpt = shipped[0] if shipped else save_checkpoint(data_dir / "checkpoints", build_model("bcos_small", 2),
                                                      classes=manifest["classes"])
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


def shoot(url: str, out: Path) -> None:
    """Visit each tab and save a full-page screenshot."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        expect(page.locator("#gallery .thumbnail-item img").first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(out / "explore.png"))
        page.locator("#gallery .thumbnail-item").nth(2).click()
        page.get_by_role("tab", name="Explain").click()
        expect(page.locator("#explain-info")).to_contain_text("explaining", timeout=30_000)
        page.wait_for_timeout(800)
        page.screenshot(path=str(out / "explain.png"))
        page.get_by_role("tab", name="Annotate").click()
        expect(page.locator("#annot canvas")).to_be_visible()
        page.wait_for_timeout(800)
        page.screenshot(path=str(out / "annotate.png"), full_page=True)
        for tab, name in (("Fine-tune", "finetune"), ("Compare", "compare"), ("Models", "models")):
            page.get_by_role("tab", name=tab).click()
            if name == "compare":
                page.locator("#compare-run").click()
                expect(page.locator("#compare-note")).to_contain_text("Before", timeout=60_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
        browser.close()


def main() -> int:
    """Build the project, serve it, take the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs")
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
        shoot(f"http://127.0.0.1:{port}/", args.out)
    finally:
        demo.close()
    log.info("wrote screenshots to %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
