"""The named endpoints through gradio_client against the app launched in-process."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from gradio_client import Client
from sqlalchemy import select

from store.db import session_scope
from store.models import Box
from store.models_runs import TrainingRun
from tests.ui.conftest import TinyProject
from ui.handlers import finetune


@pytest.fixture(scope="module")
def client(served: tuple[str, TinyProject]) -> Client:
    return Client(served[0], verbose=False, download_files=False)


def test_gallery_and_explain_endpoints(client: Client, served: tuple[str, TinyProject]) -> None:
    _, tiny = served
    items, summary, page = client.predict("tiny", "val", "(any)", "(any)", "any", False, "Name", 0,
                                                api_name="/gallery")
    assert len(items) == 2 and "of **2**" in summary and page == 0
    # tiles are served where they lie in the data dir (no per-request hash and copy into Gradio's cache)
    data = tiny.deps.settings.data_dir.resolve()
    assert all(Path(item["image"]["path"]).resolve().is_relative_to(data) for item in items), items
    overlay, colour, scores, _info = client.predict("tiny", tiny.image_ids[0], "B-cos", "Input",
                                                   "(predicted class)", api_name="/explain")
    assert overlay and colour and {c["label"] for c in scores["confidences"]} == {"warm", "cool"}


def test_user_errors_arrive_as_app_errors(client: Client) -> None:
    with pytest.raises(Exception, match="no project"):
        client.predict("nope", "(any)", "(any)", "(any)", "any", False, "Name", 0, api_name="/gallery")


def test_load_save_and_conflict_through_the_api(served: tuple[str, TinyProject]) -> None:
    url, tiny = served
    image = tiny.image_ids[4]
    first, second = (Client(url, verbose=False, download_files=False) for _ in range(2))
    loaded, *_ = first.predict("tiny", image, api_name="/load_boxes")
    value = loaded.get("value", loaded)  # an update carrying the editor value and its labels
    second.predict("tiny", image, api_name="/load_boxes")
    box = {"xmin": 1, "ymin": 1, "xmax": 9, "ymax": 9, "label": "cool", "color": "rgb(0, 0, 255)"}
    edited = {"image": value["image"], "boxes": [box], "orientation": 0}
    *_, status = first.predict("tiny", edited, api_name="/save_boxes")
    assert status.startswith("Saved 1")
    *_, status = second.predict("tiny", {**edited, "boxes": [{**box, "label": "warm"}]}, api_name="/save_boxes")
    assert status.startswith("Conflict")
    with session_scope(tiny.deps.engine) as session:
        rows = session.scalars(select(Box).where(Box.image_id == image)).all()
        assert [(b.klass.name, b.author) for b in rows] == [("cool", "local")]


def test_models_and_compare_endpoints(client: Client, served: tuple[str, TinyProject]) -> None:
    _, tiny = served
    table = client.predict("tiny", api_name="/models")
    assert table["data"][0][0] == tiny.checkpoint_id
    _metrics, images, pairs, _note = client.predict("tiny", tiny.checkpoint_id, tiny.checkpoint_id,
                                                  "Largest EPG gain", api_name="/compare")
    assert len(images["data"]) == 8 and pairs


def _run_status(tiny: TinyProject) -> str | None:
    with session_scope(tiny.deps.engine) as session:
        run = session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(1)).first()
        return None if run is None else run.status


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def test_cancel_stops_a_long_fine_tune(served: tuple[str, TinyProject]) -> None:
    url, tiny = served
    client = Client(url, verbose=False, download_files=False)  # one session: the run state is per user
    changed = {"epochs": 500, "batch_size": 2, "schedule": "fixed"}  # exactly 500 epochs: still running
    form = [changed.get(name, getattr(finetune.DEFAULTS, name)) for name, _ in finetune.FORM_SETTINGS]
    started = client.predict("tiny", *form, api_name="/start_training")  # the run state stays in the session
    assert "Queued run" in str(started)
    _wait_for(lambda: _run_status(tiny) == "running", 120, "the run to start")
    assert client.predict("tiny", api_name="/cancel_training").startswith("Cancelling run")
    _wait_for(lambda: _run_status(tiny) == "cancelled", 90, "the run to reach 'cancelled'")
    bar, *_ = client.predict("tiny", api_name="/poll_training")
    assert "cancelled" in bar


def test_database_and_checkpoints_cannot_be_downloaded(served: tuple[str, TinyProject]) -> None:
    import httpx

    url, project = served
    data = project.deps.settings.data_dir.resolve()
    image = next(data.rglob("*.png"))
    assert httpx.get(f"{url}gradio_api/file={image}").status_code == 200  # images are served
    secrets = [data / "studio.db", *sorted((data / "checkpoints").glob("*.pt"))[:1],
               *sorted((data / "runs").glob("*"))[:1], *sorted(data.glob("studio.db-*"))]
    for secret in secrets:
        assert secret.exists()
        response = httpx.get(f"{url}gradio_api/file={secret}")
        assert response.status_code in (403, 404), (secret, response.status_code)
