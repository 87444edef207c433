"""`python app.py serve` on a fresh data dir serves the page and builds the demo project in the background."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

import services.demo
import services.explanations
import ui.layout
from services.settings import Settings
from store.db import session_scope
from store.projects import create_project, list_projects
from ui import serve


@pytest.fixture()
def fake_demo(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace the (seconds-long) demo generation by a bare project; record each call's data dir."""
    calls: list[Path] = []

    def create(engine: Engine, settings: Settings, **_: object) -> None:
        calls.append(settings.data_dir)
        with session_scope(engine) as session:
            create_project(session, name=services.demo.DEMO_PROJECT, task="single_label", image_size=64,
                           classes=["a", "b"])

    monkeypatch.setattr(services.demo, "create_demo_project", create)
    return calls


@pytest.fixture()
def launched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, object]]:
    """Stop `launch` from serving (and from changing torch's thread count); record the deps and the demo
    preparation it was handed."""
    seen: list[tuple[object, object]] = []
    monkeypatch.setattr(services.explanations, "configure_serving_threads", lambda settings: None)  # process-wide
    monkeypatch.setattr(ui.layout, "launch",
                        lambda settings, *, deps=None, preparing=None, **_: seen.append((deps, preparing)))
    return seen


def wait_until(check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def project_names(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return [p.name for p in list_projects(session)]


def test_serve_creates_the_demo_project_on_a_fresh_data_dir(tmp_path: Path, fake_demo: list[Path],
                                                             launched: list[tuple[object, object]],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with caplog.at_level(logging.INFO, logger=services.demo.__name__):
        assert serve.run(settings, argparse.Namespace()) == 0
        [(deps, preparing)] = launched
        assert preparing is not None  # the page was handed the preparation to show
        wait_until(lambda: preparing.status().finished)  # built in the background, with the app's engine
    assert preparing.status().stage == "ready" and project_names(deps.engine) == ["demo"]
    assert fake_demo == [settings.data_dir] and "the demo project is ready" in caplog.text
    assert serve.run(settings, argparse.Namespace()) == 0
    assert len(fake_demo) == 1 and launched[-1][1] is None  # a second start leaves the data dir alone


def test_serve_leaves_a_data_dir_with_projects_alone(tmp_path: Path, fake_demo: list[Path],
                                                      launched: list[object]) -> None:
    from ui.deps import build_deps

    settings = Settings(data_dir=tmp_path / "data")
    with session_scope(build_deps(settings).engine) as session:
        create_project(session, name="mine", task="single_label", image_size=32, classes=["x", "y"])
    assert serve.run(settings, argparse.Namespace()) == 0
    assert fake_demo == [] and launched[0][1] is None and project_names(launched[0][0].engine) == ["mine"]


def test_a_network_address_without_a_login_is_refused_unless_the_operator_says_so(
        tmp_path: Path, launched: list[object], caplog: pytest.LogCaptureFixture) -> None:
    import app

    data = tmp_path / "data"
    assert app.main(["--data-dir", str(data), "serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "not serving 0.0.0.0:1 without a login" in caplog.text and "--allow-anonymous-network" in caplog.text
    assert launched == [] and not (data / "studio.db").exists()  # refused before anything was made or served
    for host in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"):
        assert serve.is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.5", "studio.example.org"):
        assert not serve.is_loopback(host), host
    exposed = Settings(data_dir=data, host="0.0.0.0")
    assert serve.exposure_refusal(exposed, allow_anonymous=False)
    assert serve.exposure_refusal(exposed, allow_anonymous=True) is None  # said explicitly
    assert serve.exposure_refusal(Settings(data_dir=data, host="0.0.0.0", auth="ann:secret"),
                                  allow_anonymous=False) is None  # a login: allowed
