"""`python app.py export coco|voc --out ...` never overwrites a file it did not write (issue 15, item 2).

The database, checkpoints, data sets and any other file are refused, with or without `--force`;
`--force` replaces an earlier export of the same kind. A refusal exits 2, names the path, says what
to do, and leaves every row and file as it was.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import app
import store
from tests.adversarial.conftest import Cli, row_counts, tree_state
from tests.store.test_io import make_voc


def voc_set(root: Path) -> Path:
    return make_voc(root, {"a": [("cat", (1, 1, 10, 10), 0)], "b": [("dog", (2, 2, 20, 20), 0)]},
                    {"train": ["a"], "val": ["b"]})


@pytest.fixture
def project(cli: Cli, tmp_path: Path) -> Cli:
    """Project "p" (2 images, 2 boxes) imported into the test database."""
    assert cli("import", "voc", str(voc_set(tmp_path / "sets" / "VOC2012")), "--project", "p") == 0
    return cli


@pytest.fixture
def out(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


def refused(cli: Cli, watched: list[Path], caplog: pytest.LogCaptureFixture, *argv: str) -> str:
    """Run the export; assert exit 2 and that no row and no file under `watched` changed; the log text."""
    rows, files = row_counts(cli.engine), [tree_state(w) for w in watched]
    caplog.clear()
    assert cli("export", *argv) == 2, caplog.text
    assert row_counts(cli.engine) == rows
    assert [tree_state(w) for w in watched] == files
    assert "export failed" in caplog.text
    return caplog.text


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_coco_export_never_overwrites_the_database(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"  # the default database: SQLite at DATA/studio.db
    assert app.main(["--data-dir", str(data), "import", "voc", str(voc_set(tmp_path / "VOC2012")),
                     "--project", "p"]) == 0
    before = tree_state(data)
    for kind in ("coco", "voc"):
        for force in ([], ["--force"]):
            caplog.clear()
            code = app.main(["--data-dir", str(data), "export", kind, "--project", "p",
                             "--out", str(data / "studio.db"), *force])
            assert code == 2
            assert tree_state(data) == before
            assert f"{data / 'studio.db'} is the project database" in caplog.text
    engine = store.open_database(f"sqlite:///{data / 'studio.db'}")
    with store.session_scope(engine) as session:
        assert [(p.name, p.images, p.boxes) for p in store.list_projects(session)] == [("p", 2, 2)]
    engine.dispose()


def _checkpoint(path: Path) -> None:
    torch.save({"format": 1, "arch": "bcos_small", "model": {"w": torch.zeros(2)}}, path)


def _foreign_coco(path: Path) -> None:
    path.write_text(json.dumps({"info": {"description": "COCO 2017"}, "images": [], "annotations": [],
                                "categories": []}), "utf-8")


FOREIGN_FILES = {
    "checkpoint.pt": _checkpoint,
    "notes.txt": lambda path: path.write_text("my notes", "utf-8"),
    "instances_val2017.json": _foreign_coco,
    "empty.json": lambda path: path.write_bytes(b""),
}


@pytest.mark.parametrize("name", sorted(FOREIGN_FILES))
def test_coco_export_refuses_a_file_it_did_not_write(project: Cli, out: Path, name: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    FOREIGN_FILES[name](out / name)
    for force in ([], ["--force"]):
        text = refused(project, [out, project.data_dir], caplog, "coco", "--project", "p", "--out", str(out / name),
                       *force)
        assert (f"{out / name} exists and is not a COCO export written by Guidance Studio; it was left as it is: "
                "choose another --out") in text


def test_checkpoint_in_the_data_dir_is_refused(project: Cli, caplog: pytest.LogCaptureFixture) -> None:
    ckpt = project.data_dir / "checkpoints" / "bcos_small-0123456789.pt"
    ckpt.parent.mkdir()
    _checkpoint(ckpt)
    text = refused(project, [project.data_dir], caplog, "coco", "--project", "p", "--out", str(ckpt), "--force")
    assert f"{ckpt} exists and is not a COCO export" in text


def test_coco_export_replaces_its_own_export_only_with_force(project: Cli, out: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    target = out / "p.json"
    assert project("export", "coco", "--project", "p", "--out", str(target), "--split", "train") == 0
    first = sha(target)
    text = refused(project, [out], caplog, "coco", "--project", "p", "--out", str(target))
    assert f"{target} holds an earlier COCO export; pass --force to replace it, or choose another --out" in text
    assert project("export", "coco", "--project", "p", "--out", str(target), "--force") == 0
    assert sha(target) != first and len(json.loads(target.read_text("utf-8"))["annotations"]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["p.json"]  # no temp file left behind


def test_coco_export_onto_a_folder_is_refused(project: Cli, out: Path, caplog: pytest.LogCaptureFixture) -> None:
    own_voc = out / "voc"
    assert project("export", "voc", "--project", "p", "--out", str(own_voc)) == 0
    text = refused(project, [out], caplog, "coco", "--project", "p", "--out", str(own_voc), "--force")
    assert f"{own_voc} is a folder; pass a file path for the COCO JSON" in text


@pytest.mark.parametrize("what", ["VOC data set", "other folder", "file"])
def test_voc_export_refuses_what_it_did_not_write(project: Cli, out: Path, what: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    target = out / "target"
    if what == "VOC data set":  # Annotations/, JPEGImages/, ImageSets/ only: the old check let it be replaced
        voc_set(target)
    elif what == "other folder":
        (target / "Annotations").mkdir(parents=True)
        (target / "thesis.tex").write_text("\\begin{document}", "utf-8")
    else:
        target.write_text("a file", "utf-8")
    for force in ([], ["--force"]):
        text = refused(project, [out, project.data_dir], caplog, "voc", "--project", "p", "--out", str(target),
                       *force)
        kind = "a file" if what == "file" else "a folder"
        assert (f"{target} exists and is {kind} not written by a Guidance Studio VOC export; it was left as it is: "
                "choose a new or empty folder") in text


def test_voc_export_replaces_its_own_export_only_with_force(project: Cli, out: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    target = out / "voc"
    assert project("export", "voc", "--project", "p", "--out", str(target), "--split", "train") == 0
    assert len(list((target / "Annotations").iterdir())) == 1
    text = refused(project, [out], caplog, "voc", "--project", "p", "--out", str(target))
    assert f"{target} holds an earlier VOC export; pass --force to replace it, or choose another --out" in text
    assert project("export", "voc", "--project", "p", "--out", str(target), "--force") == 0
    assert len(list((target / "Annotations").iterdir())) == 2
    assert sorted(p.name for p in out.iterdir()) == ["voc"]
    (out / "empty").mkdir()  # an empty folder is not overwritten: it holds nothing
    assert project("export", "voc", "--project", "p", "--out", str(out / "empty")) == 0
