"""First start on a fresh data dir: the page answers while the demo is still being prepared, shows the progress,
and the demo project appears through the app's API when it is done (HTTP and gradio_client, in-process server)."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client

import services.demo_data
from core.data import SyntheticConfig, generate_demo_dataset
from services.settings import Settings
from tests.ui.conftest import free_port

SMALL = SyntheticConfig(seed=5, train_size=40, val_size=10, test_size=20)
GALLERY_ARGS = ("demo", "(any)", "(any)", "(any)", "any", False, "Name", 0)


def wait_until(check: Callable[[], bool], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture()
def slowed_demo(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The demo build writes a small data set, reports 30 of its 70 images and then waits for the event."""
    release = threading.Event()

    def slow(directory: Path, config: Any = None, *, on_progress: Any = None, **_: Any) -> Path:
        if on_progress is not None:
            on_progress(30, 70)
        assert release.wait(120), "the test never released the demo build"
        return generate_demo_dataset(directory, SMALL, on_progress=on_progress)

    monkeypatch.setattr(services.demo_data, "generate_demo_dataset", slow)
    return release


@pytest.fixture()
def first_start(tmp_path: Path, slowed_demo: threading.Event) -> Iterator[tuple[str, threading.Event]]:
    """What `python app.py serve` does on a fresh data dir, in this process: `(url, release)`."""
    from services.demo import DemoPreparation
    from ui.deps import build_deps
    from ui.layout import launch

    settings = Settings(data_dir=tmp_path / "data", port=free_port(), device="cpu")
    data = services.demo_data.DemoData(settings).begin()  # before the heavy imports, in `serve`
    data.wait_store()
    deps = build_deps(settings)
    preparation = DemoPreparation()
    app = launch(settings, deps=deps, block=False, preparing=preparation)
    preparation.start(deps.engine, settings, data)
    try:
        yield f"http://127.0.0.1:{settings.port}/", slowed_demo
    finally:
        slowed_demo.set()
        app.close()


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode("utf-8", "replace")


def test_the_page_answers_and_shows_progress_while_the_demo_is_prepared(
        first_start: tuple[str, threading.Event]) -> None:
    url, release = first_start
    status, _ = get(url)
    assert status == 200  # the page serves before the demo exists
    client = Client(url, verbose=False, download_files=False)
    assert client.predict(api_name="/demo_status") == "Preparing the demo: 30/70 images…"
    _, config = get(url + "config")
    assert "Preparing the demo" in config  # the banner a new page renders
    assert "demo" not in str(client.predict(api_name="/projects"))

    release.set()
    wait_until(lambda: "demo" in str(client.predict(api_name="/projects")))
    items, *_ = client.predict(*GALLERY_ARGS, api_name="/gallery")
    assert items  # usable: the gallery pages through the demo's images
    wait_until(lambda: client.predict(api_name="/demo_status").startswith("The demo is ready"))
