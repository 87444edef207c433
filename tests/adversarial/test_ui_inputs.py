"""Issue 15 items 10 (second half) and 11 through the UI handlers: server paths posing as uploads, oversized
uploads, a project name with "/" in the report export. Each refusal leaves the database and files unchanged."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import gradio as gr
import pytest
from gradio.utils import get_upload_folder

from services import checkpoints
from tests.adversarial.conftest import row_counts
from tests.ui.conftest import TinyProject, build_tiny_project
from ui.handlers import common, compare, models


@pytest.fixture()
def tiny(tmp_path: Path) -> TinyProject:
    return build_tiny_project(tmp_path / "data")


def _uploaded(source: Path) -> Path:
    """`source` copied into Gradio's upload folder, as the browser's upload would put it."""
    folder = Path(get_upload_folder()) / hashlib.sha256(str(source).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, folder / source.name))


def test_register_refuses_a_server_path_that_was_never_uploaded(tiny: TinyProject) -> None:
    existing = sorted((tiny.deps.data_dir / "checkpoints").glob("*.pt"))[0]  # a real checkpoint on the server
    before = row_counts(tiny.deps.engine)
    with pytest.raises(gr.Error, match="was not uploaded through this page"):
        models.register_file(tiny.deps, tiny.name, str(existing), "sneaky")
    assert row_counts(tiny.deps.engine) == before


def test_register_accepts_the_same_file_when_it_was_uploaded(tiny: TinyProject) -> None:
    existing = sorted((tiny.deps.data_dir / "checkpoints").glob("*.pt"))[0]
    _, message = models.register_file(tiny.deps, tiny.name, str(_uploaded(existing)), "uploaded")
    assert message.startswith("Registered checkpoint #")


def test_an_upload_over_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "big.pt"
    source.write_bytes(b"x" * 2048)
    uploaded = _uploaded(source)
    monkeypatch.setattr(common, "MAX_UPLOAD_BYTES", 1024)
    with pytest.raises(gr.Error, match="larger than the upload limit"):
        common.uploaded_file(str(uploaded))


def test_a_project_name_with_a_slash_exports_its_report_inside_the_reports_folder(tiny: TinyProject) -> None:
    with tiny.deps.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE project SET name = 'team/../../x' WHERE name = 'tiny'")
    checkpoint = checkpoints.list_project_checkpoints(tiny.deps.engine, "team/../../x")[0].id
    path = Path(compare.export_report(tiny.deps, "team/../../x", checkpoint, checkpoint, "Largest EPG gain"))
    assert path.parent == (tiny.deps.data_dir / "reports") and path.is_file()
    assert path.name.startswith("compare-team_.._.._x-")
    assert "team/../../x" in path.read_text(encoding="utf-8")  # the report still names the project


def test_a_class_and_a_file_named_like_html_show_as_text_in_annotate(tmp_path: Path) -> None:
    import markdown_it

    from store.db import session_scope
    from store.models import Class, Image
    from ui.handlers import annotate

    tiny = build_tiny_project(tmp_path / "data")
    evil = "<img src=x onerror=alert(1)>"
    with session_scope(tiny.deps.engine) as session:  # as a zip with such a class folder and file name makes them
        session.get(Class, 1).name = evil
        image = session.get(Image, tiny.image_ids[0])
        named = "images/**bold** <b>x `tick`.png"
        file = next(tiny.deps.data_dir.rglob(Path(image.path).name))
        file.rename(file.parent.parent / named)
        image.path = named
    *_, title = annotate.load_annotation(tiny.deps, tiny.name, tiny.image_ids[0])
    rendered = markdown_it.MarkdownIt("commonmark").render(title)  # the Markdown the page renders
    assert "<img" not in rendered and "<b>" not in rendered and "<strong>bold</strong>" not in rendered
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered and "**bold** &lt;b&gt;x `tick`.png" in rendered
