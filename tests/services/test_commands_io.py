"""`import`, `export` and `projects` through `app.main`, on a SQLite database in a temp data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import app
import store
from tests.store.conftest import write_image
from tests.store.test_io import make_voc


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def cli(data_dir: Path, *argv: str) -> int:
    return app.main(["--data-dir", str(data_dir), *argv])


def test_import_export_and_projects(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    voc = make_voc(tmp_path / "VOC2007", {"ä": [("cat", (1, 1, 10, 10), 0)], "b": [("dog", (2, 2, 20, 20), 1)]},
                   {"train": ["ä"], "val": ["b"]})
    assert cli(data_dir, "import", "voc", str(voc), "--project", "pets") == 0
    assert "2 images added" in capsys.readouterr().out
    assert (data_dir / "studio.db").is_file()
    assert cli(data_dir, "import", "voc", str(voc), "--project", "pets") == 0
    assert "0 images added, 2 already present" in capsys.readouterr().out
    out = tmp_path / "export" / "pets.json"
    assert cli(data_dir, "export", "coco", "--project", "pets", "--out", str(out)) == 0
    assert len(json.loads(out.read_text("utf-8"))["annotations"]) == 2
    assert cli(data_dir, "export", "voc", "--project", "pets", "--out", str(tmp_path / "vocout")) == 0
    assert sorted(p.name for p in (tmp_path / "vocout" / "Annotations").iterdir()) == ["b.xml", "ä.xml"]
    capsys.readouterr()
    assert cli(data_dir, "projects", "--json") == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["name"], row["images"], row["boxes"], row["annotated_images"]) == ("pets", "2", "2", "2")
    assert cli(data_dir, "projects") == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("pets")


def test_malformed_import_exits_nonzero_and_leaves_database(data_dir: Path, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "coco"
    write_image(root / "a.png")
    good = {"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1, "name": "x"}],
            "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}]}
    (root / "good.json").write_text(json.dumps(good), "utf-8")
    assert cli(data_dir, "import", "coco", str(root / "good.json"), "--images", str(root), "--project", "p") == 0
    (root / "bad.json").write_text('{"images": [], "categories": [],\n "annotations": [oops]}', "utf-8")
    code = cli(data_dir, "import", "coco", str(root / "bad.json"), "--images", str(root), "--project", "q")
    assert code == 2 and "bad.json:2:" in caplog.text and "nothing written" in caplog.text
    engine = store.open_database(f"sqlite:///{data_dir / 'studio.db'}")
    with store.session_scope(engine) as session:
        assert [(p.name, p.images, p.boxes) for p in store.list_projects(session)] == [("p", 1, 1)]
    engine.dispose()


def test_unknown_project_and_dry_run(data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    write_image(tmp_path / "f" / "cat" / "1.png")
    assert cli(data_dir, "import", "folder", str(tmp_path / "f"), "--project", "pets", "--dry-run") == 0
    assert capsys.readouterr().out.startswith("dry run, nothing written: project pets (new): 1 images added")
    assert cli(data_dir, "export", "coco", "--project", "pest", "--out", str(tmp_path / "x.json")) == 2
    assert "no project named pest; known: (none yet)" in caplog.text
    assert not (tmp_path / "x.json").exists()


def _class_folder(root: Path, per_class: int) -> Path:
    for c, label in enumerate(("cat", "dog")):
        for i in range(per_class):
            write_image(root / label / f"{i}.png", size=(8, 8), color=(c * 100, i, 7))
    return root


def test_import_warns_when_validation_is_too_small_to_judge_a_run(data_dir: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    photos = _class_folder(tmp_path / "photos", 100)
    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets", "--dry-run", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)["warnings"]) == 1  # a dry run says it before anything is written
    caplog.clear()
    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images_added"] == 200 and result["split_counts"]["val"] == {"cat": 10, "dog": 10}
    [warning] = result["warnings"]
    assert "rests on 20 validation images, fewer than 50" in warning
    assert "`python app.py project split pets --val-fraction 0.19 --grow`" in warning
    assert warning in caplog.text  # the text report says it too, on the log
    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets") == 0  # again: still too small
    assert "0 images added" in capsys.readouterr().out and caplog.text.count("fewer than 50") == 2


def test_import_with_50_validation_images_has_no_warnings(data_dir: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    photos = _class_folder(tmp_path / "photos", 50)
    argv = ["import", "folder", str(photos), "--project", "pets", "--val-fraction", "0.5", "--test-fraction", "0.01"]
    assert cli(data_dir, *argv, "--dry-run", "--json") == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []
    assert cli(data_dir, *argv, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split_counts"]["val"] == {"cat": 25, "dog": 25} and result["warnings"] == []
