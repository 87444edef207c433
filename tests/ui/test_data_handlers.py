"""The Data tab (import a zip or a server folder, image size) and the Models tab's New model / Activate / Recover
as plain handler functions: every refusal says what is wrong (the zip entry, the CSV row) and writes nothing."""

from __future__ import annotations

import io
import json
import stat
import uuid
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio.utils import get_upload_folder
from PIL import Image as PILImage

from services import catalog, checkpoints, zip_import
from store.db import session_scope
from store.projects import get_project
from store.runs import active_checkpoint, record_evaluation
from tests.ui.conftest import TinyProject
from ui.deps import AppDeps, build_deps
from ui.handlers import compare, data, models

CLASSES = ("cool", "warm")
COLOURS = {"warm": (220, 60, 30), "cool": (30, 80, 220)}


def png_bytes(label: str, index: int, size: int = 32) -> bytes:
    """A `size`² PNG: grey background (light or dark: the group) with a square of the class colour at (8, 8)."""
    rng = np.random.default_rng(index)
    pixels = np.full((size, size, 3), 170 if index % 2 else 90, dtype=np.uint8)
    pixels[8:20, 8:20] = COLOURS[label]
    pixels += rng.integers(0, 12, pixels.shape, dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def class_files(per_class: int = 12, *, prefix: str = "") -> dict[str, bytes]:
    """`{path in the zip: bytes}`: `<prefix><class>/<class>_NN.png`, groups.csv and boxes.csv (every 2nd image)."""
    files: dict[str, bytes] = {}
    groups, boxes = ["file,group"], ["file,label,x0,y0,x1,y1"]
    for label in CLASSES:
        for i in range(per_class):
            name = f"{label}/{label}_{i:02d}.png"
            files[prefix + name] = png_bytes(label, i)
            groups.append(f"{name},{'light' if i % 2 else 'dark'}")
            if i % 2 == 0:
                boxes.append(f"{name},{label},8,8,20,20")
    files[prefix + "groups.csv"] = "\n".join(groups).encode()
    files[prefix + "boxes.csv"] = "\n".join(boxes).encode()
    return files


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def uploaded(source: Path) -> str:
    """`source` copied into Gradio's upload folder, where the browser's uploads land."""
    folder = Path(get_upload_folder()) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    target = folder / source.name
    target.write_bytes(source.read_bytes())
    return str(target)


@pytest.fixture()
def deps(tmp_path: Path) -> AppDeps:
    """An empty data dir and database: no project yet."""
    from services.settings import Settings

    return build_deps(Settings(data_dir=tmp_path / "data"))


def _import(deps: AppDeps, zip_file: str | None = None, folder: str = "", project: str = "mine", **kw: object) -> tuple:
    args = {"task": "auto", "val": 0.1, "test": 0.1, "seed": 0, "groups": None, "boxes": None, **kw}
    return data.run_import(deps, zip_file, folder, project, args["task"], args["val"], args["test"], args["seed"],
                           args["groups"], args["boxes"])


def _nothing_written(deps: AppDeps) -> None:
    assert catalog.project_names(deps.engine) == []
    imports = deps.data_dir / "imports"
    assert not imports.exists() or list(imports.iterdir()) == []


def test_a_zip_of_class_folders_with_both_csvs_becomes_a_project(deps: AppDeps, tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "photos.zip", class_files(prefix="photos/"))  # a zipped folder: one wrapper
    report, names, project, size = _import(deps, uploaded(archive), project="")
    assert project == "photos" and names == ["photos"] and size == 32
    assert "24 images added" in report and "12 boxes added" in report
    assert "train: cool 10, warm 10" in report and "val: cool 1, warm 1" in report and "test: cool 1, warm 1" in report
    assert "image size 32 px" in report and "Image size" in report and "python app.py" not in report
    assert "using groups.csv found in the data" in report
    info = catalog.get_project(deps.engine, "photos")
    assert info.classes == CLASSES and info.task == "single_label"
    assert catalog.filter_choices(deps.engine, "photos").groups == ("dark", "light")
    assert (deps.data_dir / "imports" / "photos" / "photos" / "cool" / "cool_00.png").is_file()
    again = _import(deps, uploaded(archive), project="photos")[0]  # idempotent; the unused copy is removed
    assert "0 images added, 24 already present" in again and "extracted copy was removed" in again
    assert [p.name for p in (deps.data_dir / "imports").iterdir()] == ["photos"]


@pytest.mark.parametrize(("entry", "says"), [
    ("../evil.png", "climbs out"),
    ("cool/../../evil.png", "climbs out"),
    ("/etc/evil.png", "absolute path"),
    ("C:/evil.png", "absolute path"),
    ("..\\evil.png", "climbs out"),
])
def test_a_bad_zip_entry_is_named_and_nothing_is_extracted(deps: AppDeps, tmp_path: Path, entry: str,
                                                           says: str) -> None:
    archive = write_zip(tmp_path / "bad.zip", {**class_files(2), entry: b"x"})
    with pytest.raises(gr.Error) as refused:
        _import(deps, uploaded(archive))
    assert f"bad.zip: entry {entry!r}" in refused.value.message and says in refused.value.message
    _nothing_written(deps)


def test_a_symlink_entry_is_refused(deps: AppDeps, tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "link.zip", class_files(2))
    with zipfile.ZipFile(archive, "a") as zf:
        link = zipfile.ZipInfo("cool/link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(gr.Error, match=r"'cool/link\.png' is a symbolic link"):
        _import(deps, uploaded(archive))
    _nothing_written(deps)


def test_a_zip_bomb_is_refused_from_its_directory(deps: AppDeps, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("cool/a.png", b"\0" * 2_000_000)  # compresses ~1000×
    assert archive.stat().st_size < 20_000
    monkeypatch.setattr(zip_import, "MAX_ZIP_BYTES", 1_000_000)
    with pytest.raises(gr.Error, match=r"bomb.zip expands to .* more than the limit"):
        _import(deps, uploaded(archive))
    monkeypatch.setattr(zip_import, "MAX_ZIP_ENTRIES", 3)
    many = write_zip(tmp_path / "many.zip", class_files(2))
    with pytest.raises(gr.Error, match=r"many\.zip has 6 entries, more than the limit of 3"):
        _import(deps, uploaded(many))
    _nothing_written(deps)


def test_an_unknown_class_in_the_boxes_csv_names_the_row_and_writes_nothing(deps: AppDeps, tmp_path: Path) -> None:
    files = {k: v for k, v in class_files(3).items() if not k.endswith(".csv")}
    archive = write_zip(tmp_path / "mine.zip", files)
    boxes = tmp_path / "my_boxes.csv"
    boxes.write_text("file,label,x0,y0,x1,y1\ncool/cool_00.png,cool,8,8,20,20\nwarm/warm_01.png,dog,1,1,9,9\n")
    with pytest.raises(gr.Error, match=r"my_boxes.csv:3.*'dog'"):
        _import(deps, uploaded(archive), boxes=uploaded(boxes))
    _nothing_written(deps)


def test_no_file_both_sources_and_not_a_zip_are_refused(deps: AppDeps, tmp_path: Path) -> None:
    with pytest.raises(gr.Error, match=r"Upload a \.zip"):
        _import(deps)
    archive = write_zip(tmp_path / "d.zip", class_files(2))
    with pytest.raises(gr.Error, match="not both"):
        _import(deps, uploaded(archive), folder=str(tmp_path))
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not a zip at all")
    with pytest.raises(gr.Error, match=r"fake\.zip is not a zip file"):
        _import(deps, uploaded(fake))
    with pytest.raises(gr.Error, match="was not uploaded through this page"):
        _import(deps, str(archive))  # a server path posing as an upload
    with pytest.raises(gr.Error, match="is not inside a folder this server imports from"):
        _import(deps, folder=str(tmp_path / "nowhere"))  # outside the import roots: whether it exists is not said
    with pytest.raises(gr.Error, match="is not a folder on the server"):
        _import(deps, folder=str(deps.data_dir / "imports" / "nowhere"))
    with pytest.raises(gr.Error, match="Val fraction 1 is outside"):
        _import(deps, uploaded(archive), val=1)
    _nothing_written(deps)


def test_a_zip_of_a_coco_export_finds_its_images_folder_and_refuses_a_boxes_csv(deps: AppDeps,
                                                                                tmp_path: Path) -> None:
    images = [{"id": i, "file_name": f"{label}_{i}.png", "width": 32, "height": 32}
              for i, label in enumerate(CLASSES * 2)]
    coco = {"images": images, "categories": [{"id": 1, "name": "cool"}, {"id": 2, "name": "warm"}],
            "annotations": [{"id": i, "image_id": i, "category_id": 1 + i % 2, "bbox": [8, 8, 12, 12]}
                            for i in range(len(images))]}
    files = {f"export/images/{im['file_name']}": png_bytes(CLASSES[im["id"] % 2], im["id"]) for im in images}
    archive = write_zip(tmp_path / "export.zip", {**files, "export/result.json": json.dumps(coco).encode()})
    report, _, project, _ = _import(deps, uploaded(archive), project="", task="single_label")
    assert project == "export" and "4 images added" in report and "4 boxes added" in report
    assert "COCO result.json, images in images/" in report
    assert catalog.get_project(deps.engine, "export").task == "single_label"
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("file,label,x0,y0,x1,y1\n")
    with pytest.raises(gr.Error, match="COCO carries its boxes"):
        _import(deps, uploaded(archive), project="other", boxes=uploaded(boxes))
    assert catalog.project_names(deps.engine) == ["export"]
    assert [p.name for p in (deps.data_dir / "imports").iterdir()] == ["export"]  # the refused copy is gone


def test_a_server_folder_with_its_own_splits_keeps_them(deps: AppDeps, tmp_path: Path) -> None:
    root = deps.data_dir / "imports" / "set"  # the import root every server allows (services.import_roots)
    for split, first, count in (("train", 0, 10), ("val", 20, 2)):
        for label in CLASSES:
            (root / split / label).mkdir(parents=True)
            for i in range(first, first + count):
                (root / split / label / f"{i}.png").write_bytes(png_bytes(label, i))
    report, names, _, _ = _import(deps, folder=str(root), project="served")
    assert names == ["served"] and "val: cool 2, warm 2" in report and "kept the data's own val/ split" in report
    assert "train: cool 9, warm 9" in report and "test: cool 1, warm 1" in report  # carved: the data had no test/


def test_image_size_is_shown_and_set(tiny: TinyProject) -> None:
    assert data.image_size(tiny.deps, tiny.name) == 32
    assert "64×64 px" in data.apply_image_size(tiny.deps, tiny.name, 64.0)
    assert data.image_size(tiny.deps, tiny.name) == 64
    with pytest.raises(gr.Error, match="multiple of 32"):
        data.apply_image_size(tiny.deps, tiny.name, 50)
    with pytest.raises(gr.Error, match="Pick a project"):
        data.apply_image_size(tiny.deps, None, 64)


def test_new_model_from_scratch_or_another_checkpoint_and_its_refusals(tiny: TinyProject, tmp_path: Path) -> None:
    from core.bcos import build_model
    from core.train import save_checkpoint

    table, message, new_id = models.new_model(tiny.deps, tiny.name, "bcos_small", None, 3)
    assert table["id"].tolist()[0] == new_id and "from scratch" in message and "Not activated" in message
    other = save_checkpoint(tmp_path, build_model("bcos_small", 3), classes=["a", "b", "c"])
    _, message, newer = models.new_model(tiny.deps, tiny.name, "bcos_small", uploaded(other), 0, True)
    assert "3-class head was replaced by a new 2-class head" in message and "now the active model" in message
    assert checkpoints.get_project_checkpoint(tiny.deps.engine, tiny.name, "active").id == newer
    with pytest.raises(gr.Error, match=r"unknown architecture.*resnet18.*did you mean.*bcosified_resnet18"):
        models.new_model(tiny.deps, tiny.name, "resnet18", None, 0)
    with pytest.raises(gr.Error, match="was not uploaded through this page"):
        models.new_model(tiny.deps, tiny.name, "bcos_small", str(other), 0)
    with pytest.raises(gr.Error, match="Seed -1"):
        models.new_model(tiny.deps, tiny.name, "bcos_small", None, -1)
    with pytest.raises(gr.Error, match="Pick a project"):
        models.new_model(tiny.deps, "", "bcos_small", None, 0)
    labels = dict(models.architecture_choices())
    assert labels["DenseNet-121 → B-cos"] == "bcosified_densenet121" and len(labels) == 7


def test_activate_a_selected_row_and_recover_refusals(tiny: TinyProject, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, new_id = models.new_model(tiny.deps, tiny.name, "bcos_small", None, 0)
    table = models.list_models(tiny.deps, tiny.name)
    assert models.selected_checkpoint(table, 0) == new_id and models.selected_checkpoint(table, 9) is None
    table, message, armed, _ = models.activate(tiny.deps, tiny.name, new_id)  # never measured: nothing to ask
    assert table["active"].tolist() == ["●", ""] and f"#{new_id}" in message and armed is None
    with pytest.raises(gr.Error, match="Pick a checkpoint"):
        models.activate(tiny.deps, tiny.name, None)
    with pytest.raises(gr.Error, match="no checkpoint with id 999"):
        models.activate(tiny.deps, tiny.name, 999)
    with pytest.raises(gr.Error, match="Pick a checkpoint"):
        models.recover(tiny.deps, tiny.name, None, 5)
    started = []
    monkeypatch.setattr(models.model_factory, "launch_recovery",
                        lambda *a, **kw: started.append(a[2:]) or type("L", (), {"run_id": 7})())
    assert "Recovery run 7 of checkpoint #" in models.recover(tiny.deps, tiny.name, new_id, 2.0)
    assert started == [(tiny.name, new_id, 2)]


def test_an_import_with_a_small_val_split_warns_and_the_button_carves_a_bigger_one(deps: AppDeps,
                                                                                    tmp_path: Path) -> None:
    files = {name: content for name, content in class_files(60).items() if name != "groups.csv"}  # no groups
    report, _, project, _ = _import(deps, uploaded(write_zip(tmp_path / "birds.zip", files)), project="birds")
    assert "val: cool 6, warm 6" in report
    assert "too small to judge a run" in report and "rests on 12 validation images, fewer than 50" in report
    assert "“Carve a bigger validation split” below moves" in report and "python app.py" not in report
    shown, button = data.validation_status(deps, project)
    assert shown["visible"] and "rests on 12 validation images" in shown["value"] and button["visible"]
    done = data.carve_validation(deps, project)
    assert "training images of project 'birds' into val" in done.replace("\\", "")
    shown, button = data.validation_status(deps, project)
    assert not shown["visible"] and not button["visible"]
    with pytest.raises(gr.Error, match="big enough already"):
        data.carve_validation(deps, project)


def test_a_small_split_that_carving_cannot_fix_says_so_without_a_button(deps: AppDeps, tmp_path: Path) -> None:
    report = _import(deps, uploaded(write_zip(tmp_path / "few.zip", class_files())), project="few")[0]
    assert "rests on 1 validation image of group" in report and "Carving cannot fix it" in report
    shown, button = data.validation_status(deps, "few")
    assert shown["visible"] and "Import more images of group" in shown["value"] and not button["visible"]
    assert data.validation_status(deps, None) == ({"__type__": "update", "value": "", "visible": False},
                                                  {"__type__": "update", "visible": False})


def test_activating_a_worse_model_asks_first_and_says_by_how_much(tiny: TinyProject) -> None:
    _, _, worse_id = models.new_model(tiny.deps, tiny.name, "bcos_small", None, 1)  # not active: tiny's stays
    with session_scope(tiny.deps.engine) as session:  # measured as the active one was (train split): worse
        record_evaluation(session, checkpoint_id=worse_id, split="train",
                          metrics={"accuracy": 0.25, "worst_group_accuracy": 0.0}, results=[])
    table, message, armed, button = models.activate(tiny.deps, tiny.name, worse_id)
    assert table is not None and "Not activated yet" in message and "accuracy 0.250 vs 0.500 (-0.250)" in message
    assert armed == str(worse_id) and button["value"] == "Activate anyway"
    assert _active_id(tiny) == tiny.checkpoint_id  # nothing changed yet
    note, compare_armed, _ = compare.activate(tiny.deps, tiny.name, worse_id)  # Compare asks the same
    assert "Not activated yet" in note and compare_armed == str(worse_id) and _active_id(tiny) == tiny.checkpoint_id
    table, message, armed, button = models.activate(tiny.deps, tiny.name, worse_id, armed)  # the second click
    assert f"#{worse_id}" in message and "now the active model" in message and armed is None
    assert button["value"] == "Activate" and _active_id(tiny) == worse_id
    _, message, armed, _ = models.activate(tiny.deps, tiny.name, tiny.checkpoint_id)  # the better one: no question
    assert "now the active model" in message and armed is None and _active_id(tiny) == tiny.checkpoint_id


def _active_id(tiny: TinyProject) -> int:
    with session_scope(tiny.deps.engine) as session:
        return active_checkpoint(session, get_project(session, tiny.name).id).id
