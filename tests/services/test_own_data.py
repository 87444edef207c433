"""Your own data, from nothing to a guided model, on the command line (issue 12): import a folder with group
and box CSVs, the project's image size, `model new|list|activate`, training without boxes, then with them.

Small generated images (32–64 px), `bcos_small`, one-epoch runs: the whole file runs in well under two minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import app
from services.checkpoints import default_pair
from services.database import open_store
from services.settings import Settings

CLASSES = ("cat", "dog")


def cli(data_dir: Path, *argv: str) -> int:
    return app.main(["--data-dir", str(data_dir), "--device", "cpu", *argv])


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def photo(path: Path, size: tuple[int, int], box: tuple[int, int, int, int], value: int) -> Path:
    """A dark image of `size` (w, h) with a bright square `box` (x0, y0, x1, y1); `value` varies the bytes."""
    pixels = np.full((size[1], size[0], 3), value % 40, dtype=np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = 230
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels).save(path)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """`photos/<class>/NNN.png`: 10 images per class, 48x40; cats have the square left, dogs right."""
    root = tmp_path / "photos"
    for k, name in enumerate(CLASSES):
        for i in range(10):
            photo(root / name / f"{i:03}.png", (48, 40), (4, 8, 20, 24) if k == 0 else (28, 8, 44, 24), i + 20 * k)
    return root


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def project_rows(data_dir: Path, name: str = "pets") -> list[dict]:
    from services.catalog import list_projects
    from services.database import open_store

    engine = open_store(Settings(data_dir=data_dir))
    try:
        return [vars(p) for p in list_projects(engine) if p.name == name]
    finally:
        engine.dispose()


def images(data_dir: Path, name: str = "pets") -> list:
    from store.db import open_database, session_scope
    from store.projects import get_project
    from store.queries import page_images

    engine = open_database(Settings(data_dir=data_dir).database_url)
    try:
        with session_scope(engine) as session:
            rows, _ = page_images(session, get_project(session, name).id, limit=1000)
            return rows
    finally:
        engine.dispose()


# --- 1. import folder ----------------------------------------------------------------------------------------

def test_flat_folder_gets_a_stratified_seeded_split_that_is_reported(photos: Path, data_dir: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets") == 0
    out = capsys.readouterr().out
    assert "20 images added" in out
    assert "  train: cat 8, dog 8\n  val: cat 1, dog 1\n  test: cat 1, dog 1\n" in out
    assert "image size 32 px (median shorter side 40 px" in out and "project set pets --image-size N" in out
    first = {Path(r.path).as_posix().split("photos/")[-1]: r.split for r in images(data_dir)}
    assert cli(data_dir, "import", "folder", str(photos), "--project", "again") == 0  # same seed: same split
    assert {Path(r.path).as_posix().split("photos/")[-1]: r.split for r in images(data_dir, "again")} == first
    capsys.readouterr()
    assert cli(data_dir, "import", "folder", str(photos), "--project", "other", "--seed", "3",
               "--val-fraction", "0.2", "--test-fraction", "0") == 0
    out = capsys.readouterr().out
    assert "  train: cat 8, dog 8\n  val: cat 2, dog 2\n" in out and "test:" not in out
    assert {Path(r.path).as_posix().split("photos/")[-1]: r.split for r in images(data_dir, "other")} != first
    assert cli(data_dir, "import", "folder", str(photos), "--project", "one", "--split", "val") == 0
    assert "  val: cat 10, dog 10\n" in capsys.readouterr().out


def test_split_layout_is_kept_and_a_missing_val_split_can_be_carved(tmp_path: Path, data_dir: Path,
                                                                   capsys: pytest.CaptureFixture[str],
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "split"
    for i in range(6):
        for k, name in enumerate(CLASSES):
            photo(root / "train" / name / f"{i}.png", (32, 32), (2, 2, 12, 12), i + 10 * k)
        photo(root / "test" / CLASSES[i % 2] / f"t{i}.png", (32, 32), (2, 2, 12, 12), 100 + i)
    assert cli(data_dir, "import", "folder", str(root), "--project", "kept") == 0
    out = capsys.readouterr().out
    assert "  train: cat 6, dog 6\n  test: cat 3, dog 3\n" in out and "no val/ folder" in out
    assert cli(data_dir, "import", "folder", str(root), "--project", "carved", "--val-fraction", "0.2") == 0
    out = capsys.readouterr().out
    assert "  train: cat 5, dog 5\n  val: cat 1, dog 1\n  test: cat 3, dog 3\n" in out and "carved val 20%" in out
    for flags, message in (
            (("--test-fraction", "0.2"), "already has a test/ folder; drop --test-fraction"),
            (("--split", "train"), "has train/val/test sub-folders, so the images keep those splits; drop --split"),
            (("--val-fraction", "1.5"), "--val-fraction 1.5 is outside [0, 1)"),
            (("--val-fraction", "0.6", "--test-fraction", "0.5"), "must leave images for training")):
        caplog.clear()
        assert cli(data_dir, "import", "folder", str(root), "--project", "bad", *flags) == 2
        assert message in caplog.text and "nothing written" in caplog.text
    assert cli(data_dir, "import", "folder", str(root / "train"), "--project", "bad", "--split", "val",
               "--val-fraction", "0.1") == 2
    assert "--split puts every image in one split" in caplog.text
    assert project_rows(data_dir, "bad") == []


def test_folder_help_documents_both_layouts_and_both_csvs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        app.main(["import", "folder", "--help"])
    text = capsys.readouterr().out
    assert "DIR/<class>/<image>" in text and "DIR/<split>/<class>/<image>" in text
    assert "file,group\n" in text and "cat/001.jpg,indoor" in text
    assert "file,label,x0,y0,x1,y1\n" in text and "cat/001.jpg,cat,12,30,180,200" in text


def test_boxes_csv_several_rows_per_file_idempotent_and_groups(photos: Path, data_dir: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("file,label,x0,y0,x1,y1\ncat/000.png,cat,4,8,20,24\ncat/000.png,dog,30,8,44,24\n"
                     "001.png,cat,4,8,20,24\ndog/005.png,dog,28,8,44,24.5\ndog/006.png,dog,40,8,60,20\n"
                     "dog/007.png,dog,20,8,10,20\n", "utf-8")
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\ncat/000.png,indoor\ndog/005.png,outdoor\n", "utf-8")
    argv = ("import", "folder", str(photos), "--project", "pets", "--boxes", str(boxes), "--groups", str(groups))
    assert cli(data_dir, *argv) == 2  # 001.png is in both class folders
    capsys.readouterr()
    boxes.write_text(boxes.read_text("utf-8").replace("\n001.png", "\ncat/001.png"), "utf-8")
    assert cli(data_dir, *argv) == 0
    out = capsys.readouterr().out
    assert "4 boxes added" in out
    assert "skipped boxes.csv:6 (dog): box (40, 8, 60, 20) outside the 48x40 image" in out
    assert "skipped boxes.csv:7 (dog): empty or inverted box (20, 8, 10, 20)" in out
    [row] = project_rows(data_dir)
    assert (row["boxes"], row["annotated_images"]) == (4, 3)
    assert {Path(r.path).name: r.group for r in images(data_dir) if r.group} == {"000.png": "indoor",
                                                                                "005.png": "outdoor"}
    assert cli(data_dir, *argv) == 0  # the same boxes again: nothing added
    assert "0 images added, 20 already present; 0 labels added; 0 boxes added, 4 already present" in \
        capsys.readouterr().out
    assert project_rows(data_dir)[0]["boxes"] == 4


@pytest.mark.parametrize(("row", "message"), [
    ("cat/000.png,cta,1,1,5,5", "boxes.csv:2 (cta): label 'cta' is not a class of project pets (did you mean \"cat\"?)"
                                "; classes: cat, dog"),
    ("cat/999.png,cat,1,1,5,5", "boxes.csv:2: unknown file 'cat/999.png': no such image under"),
    ("cat/000.png,cat,nan,1,5,5", "boxes.csv:2: x0 'nan' is not a finite number"),
    ("cat/000.png,cat,1,1e400,5,5", "boxes.csv:2: y0 '1e400' is not a finite number"),
    ("cat/000.png,cat,1,1,five,5", "boxes.csv:2: x1 'five' is not a number"),
    ("cat/000.png,,1,1,5,5", "boxes.csv:2: label is blank"),
    ("cat/000.png,cat,1,1,5", "boxes.csv:2: expected 6 fields"),
])
def test_boxes_csv_errors_name_the_row_and_write_nothing(photos: Path, data_dir: Path, tmp_path: Path, row: str,
                                                         message: str, caplog: pytest.LogCaptureFixture) -> None:
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(f"file,label,x0,y0,x1,y1\n{row}\n", "utf-8")
    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets", "--boxes", str(boxes)) == 2
    assert message in caplog.text and "nothing written" in caplog.text
    assert project_rows(data_dir) == []


def test_boxes_csv_header_must_name_the_columns(photos: Path, data_dir: Path, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("file,label,left,top,right,bottom\ncat/000.png,cat,1,1,5,5\n", "utf-8")
    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets", "--boxes", str(boxes)) == 2
    assert "boxes.csv:1: header must name the columns 'file', 'label', 'x0', 'y0', 'x1', 'y1' (missing x0, y0, " \
           "x1, y1)" in caplog.text
    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets", "--boxes",
               str(tmp_path / "nope.csv")) == 2
    assert "boxes CSV" in caplog.text and "nope.csv does not exist" in caplog.text


# --- VOC and COCO: --groups, --task single_label, boxes for images the project already has ---------------------

def coco_file(path: Path, images: list[tuple[int, str]], annotations: list[tuple[int, str, list[float]]]) -> Path:
    """A COCO instances JSON: images (id, file_name), annotations (image id, category name, bbox)."""
    categories = {name: k + 1 for k, name in enumerate(CLASSES)}
    document = {"images": [{"id": i, "file_name": f} for i, f in images],
                "categories": [{"id": c, "name": n} for n, c in categories.items()],
                "annotations": [{"id": k + 1, "image_id": i, "category_id": categories[n], "bbox": b}
                                for k, (i, n, b) in enumerate(annotations)]}
    path.write_text(json.dumps(document), "utf-8")
    return path


def test_coco_export_of_another_tool_adds_boxes_to_a_folder_project(photos: Path, data_dir: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets") == 0
    export = tmp_path / "labelstudio"  # the same files, somewhere else, as a labelling tool exports them
    for name in ("cat/000.png", "dog/003.png", "cat/001.png"):
        (export / "images").mkdir(parents=True, exist_ok=True)
        (export / "images" / name.replace("/", "_")).write_bytes((photos / name).read_bytes())
    listing = [(1, "cat_000.png"), (2, "dog_003.png"), (3, "cat_001.png")]
    json_path = coco_file(export / "result.json", listing,
                          [(1, "cat", [4, 8, 16, 16]), (2, "dog", [28, 8, 16, 16]), (2, "dog", [30, 10, 5, 5])])
    groups = export / "groups.csv"
    groups.write_text("file,group\ncat_000.png,indoor\n", "utf-8")
    argv = ("import", "coco", str(json_path), "--images", str(export / "images"), "--project", "pets")
    assert cli(data_dir, *argv) == 2
    assert "project 'pets' is single_label, this data is multi_label" in caplog.text
    assert "--task single_label" in caplog.text
    capsys.readouterr()
    assert cli(data_dir, *argv, "--task", "single_label", "--groups", str(groups)) == 0
    out = capsys.readouterr().out
    assert "0 images added, 3 already present; 0 labels added; 3 boxes added" in out
    assert "groups set on 1 images already in the project" in out
    [row] = project_rows(data_dir)
    assert (row["images"], row["boxes"], row["annotated_images"]) == (20, 3, 2)
    assert cli(data_dir, *argv, "--task", "single_label") == 0  # idempotent
    assert "0 boxes added, 3 already present" in capsys.readouterr().out
    coco_file(json_path, listing, [(1, "cat", [4, 8, 16, 16]), (1, "dog", [28, 8, 16, 16])])
    caplog.clear()
    assert cli(data_dir, *argv, "--task", "single_label") == 2
    assert "cat_000.png: its boxes carry 2 classes (cat, dog); a single-label project needs one class" in caplog.text
    assert project_rows(data_dir)[0]["boxes"] == 3


def test_voc_single_label_with_groups_into_a_new_project(tmp_path: Path, data_dir: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from tests.store.test_io import make_voc

    voc = make_voc(tmp_path / "VOC", {"a": [("cat", (1, 1, 10, 10), 0)], "b": [("dog", (2, 2, 20, 20), 0),
                                                                              ("dog", (3, 3, 9, 9), 0)]},
                   {"train": ["a"], "val": ["b"]})
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\nJPEGImages/a.jpg,g1\nb.jpg,g2\n", "utf-8")
    assert cli(data_dir, "import", "voc", str(voc), "--project", "v", "--task", "single_label",
               "--groups", str(groups)) == 0
    out = capsys.readouterr().out
    assert "2 images added" in out and "2 labels added; 3 boxes added" in out and "  train: cat 1\n  val: dog 1" in out
    assert {Path(r.path).name: r.group for r in images(data_dir, "v")} == {"a.jpg": "g1", "b.jpg": "g2"}


# --- EXIF orientation ---------------------------------------------------------------------------------------

def phone_photo(path: Path) -> tuple[int, int, int, int]:
    """A JPEG stored 64 wide x 32 high in sensor order with EXIF Orientation 6 (turn 90° clockwise to view), so
    a viewer shows it 32 x 64; the object is a bright square at (4, 40)-(20, 56) of what the viewer shows."""
    upright = np.zeros((64, 32, 3), dtype=np.uint8)
    upright[40:56, 4:20] = 255
    stored = PILImage.fromarray(upright).transpose(PILImage.Transpose.ROTATE_90)  # undone by orientation 6
    exif = PILImage.Exif()
    exif[0x0112] = 6
    path.parent.mkdir(parents=True, exist_ok=True)
    stored.save(path, quality=95, exif=exif)
    return 4, 40, 20, 56


def test_exif_rotated_photo_box_lands_on_the_object_in_training_and_explanation_input(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.data import GuidanceDataset, images_to_batch, load_rgb
    from services.database import open_store
    from services.datasets import project_train_data
    from services.explain_requests import explain_target
    from store.db import session_scope
    from store.projects import get_project

    root = tmp_path / "phone"
    box = phone_photo(root / "cat" / "p.jpg")
    photo(root / "cat" / "q.png", (32, 64), (0, 0, 4, 4), 1)
    photo(root / "dog" / "r.png", (32, 64), (0, 0, 4, 4), 2)
    with PILImage.open(root / "cat" / "p.jpg") as raw:  # the stored pixels: the box is not on the object there
        assert raw.size == (64, 32)
    (tmp_path / "boxes.csv").write_text("file,label,x0,y0,x1,y1\ncat/p.jpg,cat,{},{},{},{}\n".format(*box), "utf-8")
    assert cli(data_dir, "import", "folder", str(root), "--project", "phone", "--split", "train",
               "--boxes", str(tmp_path / "boxes.csv")) == 0
    assert "1 boxes added" in capsys.readouterr().out  # inside the 32x64 image a viewer shows
    [stored] = [r for r in images(data_dir, "phone") if r.path.endswith("p.jpg")]
    assert (stored.width, stored.height) == (32, 64)
    settings = Settings(data_dir=data_dir, device="cpu")
    engine = open_store(settings)
    with session_scope(engine) as session:
        records = project_train_data(session, settings, get_project(session, "phone"), val_split="train").train
    [record] = [r for r in records if r.boxes]
    sample = GuidanceDataset([record], num_classes=2, image_size=32)[0]
    x0, y0, x1, y1 = (int(v) for v in sample["boxes"][0].round())  # (16, 20, 24, 28) of the 32x32 input
    inside = sample["image"][:, y0:y1, x0:x1].mean()
    outside = sample["image"].sum() - sample["image"][:, y0:y1, x0:x1].sum()
    assert inside > 0.9 and outside / (sample["image"].numel() - 3 * (y1 - y0) * (x1 - x0)) < 0.05
    assert cli(data_dir, "model", "new", "--project", "phone", "--arch", "bcos_small") == 0
    target = explain_target(engine, "phone", stored.id, data_dir=data_dir)
    engine.dispose()
    batch = images_to_batch([load_rgb(target.request.image_path)], target.request.image_size)  # as explained
    assert torch.equal(batch[0], sample["image"])


def test_display_copy_and_thumbnail_of_a_phone_photo_are_upright(tmp_path: Path) -> None:
    from ui.data.display import display_image, thumbnail

    source = tmp_path / "p.jpg"
    x0, y0, x1, y1 = phone_photo(source)
    shown = display_image(source, tmp_path / "cache", "p", 1)
    assert shown != source
    with PILImage.open(shown) as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.shape == (64, 32) and pixels[y0:y1, x0:x1].mean() > 200
    with PILImage.open(thumbnail(source, tmp_path / "cache", "p", 32, 64)) as tile:
        assert tile.size == (32, 64)


# --- 2. image size ------------------------------------------------------------------------------------------

def test_project_image_size_is_settable_validated_and_used_by_training(photos: Path, data_dir: Path,
                                                                       capsys: pytest.CaptureFixture[str],
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    from services.catalog import get_project as project_info
    from services.database import open_store
    from services.datasets import project_train_data
    from services.own_data import set_image_size
    from store.db import session_scope
    from store.projects import get_project

    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets") == 0
    assert cli(data_dir, "project", "set", "pets", "--image-size", "64") == 0
    assert "project pets: image size 64 px" in capsys.readouterr().out
    for value, message in (("65", "must be a multiple of 32 between 32 and 1024"), ("2048", "between 32 and 1024"),
                           ("0", "between 32 and 1024")):
        assert cli(data_dir, "project", "set", "pets", "--image-size", value) == 2
        assert f"image size {value} " in caplog.text and message in caplog.text
    assert cli(data_dir, "project", "set", "pest", "--image-size", "64") == 2
    assert 'no project named pest (did you mean "pets"?)' in caplog.text
    assert cli(data_dir, "project", "set", "pets") == 2 and "give --image-size N" in caplog.text
    settings = Settings(data_dir=data_dir)
    engine = open_store(settings)
    try:
        assert set_image_size(engine, "pets", 96).image_size == 96
        with pytest.raises(ValueError, match="multiple of 32"):
            set_image_size(engine, "pets", 100)
        assert project_info(engine, "pets").image_size == 96
        with session_scope(engine) as session:
            assert project_train_data(session, settings, get_project(session, "pets")).image_size == 96
    finally:
        engine.dispose()


# --- 3.–5. model new / list / activate, training without and with boxes ---------------------------------------

def test_journey_from_a_folder_to_a_guided_model(photos: Path, data_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from core.explain.base import Explainer
    from core.train import read_checkpoint

    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets") == 0
    assert cli(data_dir, "model", "new", "--project", "pets", "--arch", "bcos_small", "--json") == 0
    made = last_json(capsys.readouterr().out)
    assert made["source"] == "scratch" and made["activated"] and made["active"] and made["classes"] == list(CLASSES)
    assert read_checkpoint(Path(made["path"]))["config"]["fresh"] is True
    assert cli(data_dir, "model", "new", "--project", "pets", "--arch", "bcos_small", "--json") == 0
    assert last_json(capsys.readouterr().out)["checkpoint_id"] == made["checkpoint_id"]  # seeded: the same model
    assert cli(data_dir, "model", "new", "--project", "pets", "--arch", "bcos_small", "--seed", "1", "--json") == 0
    second = last_json(capsys.readouterr().out)
    assert second["checkpoint_id"] != made["checkpoint_id"] and not second["active"]  # the first one stays active

    explained = []
    original = Explainer.attribute

    def counting(self: Explainer, *args: object, **kwargs: object) -> object:
        explained.append(kwargs.get("create_graph"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Explainer, "attribute", counting)
    # one epoch on 20 images checks the route, not the gain: --no-keep-start keeps the epoch even if it ties its start
    # (the starting model competing is tested in test_train_command.py)
    assert cli(data_dir, "train", "--project", "pets", "--lam", "0", "--epochs", "1", "--batch-size", "8",
               "--no-keep-start", "--activate", "--json") == 0
    plain = last_json(capsys.readouterr().out)
    assert plain["status"] == "succeeded" and plain["config"]["freeze_norm"] == "no"  # a fresh model: norms train
    assert explained == []  # λ = 0: no explanation computed while training
    assert plain["active_checkpoint_id"] == plain["best_checkpoint_id"] != made["checkpoint_id"]
    assert "fresh" not in read_checkpoint(Path(plain["best_checkpoint"]))["config"]

    assert cli(data_dir, "evaluate", "--project", "pets", "--json") == 0
    assert last_json(capsys.readouterr().out)["n_images"] == 2
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("file,label,x0,y0,x1,y1\n" + "".join(
        f"{name}/{i:03}.png,{name},{'4,8,20,24' if name == 'cat' else '28,8,44,24'}\n"
        for name in CLASSES for i in range(10)), "utf-8")
    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets", "--boxes", str(boxes)) == 0
    assert "20 boxes added" in capsys.readouterr().out
    assert cli(data_dir, "train", "--project", "pets", "--epochs", "1", "--batch-size", "8", "--no-keep-start",
               "--activate", "--json") == 0
    guided = last_json(capsys.readouterr().out)
    assert guided["status"] == "succeeded" and guided["config"]["freeze_norm"] == "yes" and guided["config"]["lam"] > 0
    assert True in explained  # with boxes, the guided step explains
    assert guided["before"]["epg"] is not None and guided["active_checkpoint_id"] == guided["best_checkpoint_id"]

    assert cli(data_dir, "model", "list", "--project", "pets", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["active"] for r in rows].count(True) == 1 and rows[0]["id"] == guided["best_checkpoint_id"]
    assert {r["id"] for r in rows} >= {made["checkpoint_id"], second["checkpoint_id"], plain["best_checkpoint_id"]}
    chosen = {r["id"] for r in rows if "the run's choice" in r["note"]}  # each run names the checkpoint it chose
    assert chosen == {plain["best_checkpoint_id"], guided["best_checkpoint_id"]}
    engine = open_store(Settings(data_dir=data_dir))
    assert default_pair(engine, "pets")[1] == guided["best_checkpoint_id"]  # Compare opens on the run's choice
    engine.dispose()
    assert cli(data_dir, "model", "activate", "--project", "pets", "--checkpoint", str(made["checkpoint_id"])) == 0
    assert f"checkpoint {made['checkpoint_id']} (bcos_small) is the active model" in capsys.readouterr().out
    assert cli(data_dir, "model", "list", "--project", "pets") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("id") and any(line.startswith(f"{made['checkpoint_id']} ") and "●" in line
                                             for line in table)


def test_model_command_errors(photos: Path, data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                              capsys: pytest.CaptureFixture[str]) -> None:
    import torchvision

    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets") == 0
    assert cli(data_dir, "import", "folder", str(photos), "--project", "zoo") == 0
    with pytest.raises(SystemExit) as info:
        cli(data_dir, "model", "new", "--project", "pets", "--arch", "resnet18")
    assert info.value.code == 2 and "invalid choice: 'resnet18'" in capsys.readouterr().err
    assert cli(data_dir, "model", "new", "--project", "pest", "--arch", "bcos_small") == 2
    assert "no project named pest" in caplog.text
    assert cli(data_dir, "model", "new", "--project", "pets", "--arch", "bcos_small", "--weights",
               str(tmp_path / "missing.pth")) == 2
    assert "weights file" in caplog.text and "missing.pth does not exist" in caplog.text
    tv = tmp_path / "resnet18-tv.pth"
    torch.save(torchvision.models.resnet18(num_classes=4).state_dict(), tv)
    assert cli(data_dir, "model", "new", "--project", "pets", "--arch", "bcos_resnet18", "--weights", str(tv)) == 2
    assert "holds torchvision weights" in caplog.text and "pick the bcosified_* architecture" in caplog.text
    assert cli(data_dir, "model", "new", "--project", "pets", "--arch", "bcos_small", "--weights", str(tv)) == 2
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    assert cli(data_dir, "model", "new", "--project", "pets", "--arch", "bcos_small", "--weights",
               str(tmp_path / "junk.pth")) == 2
    assert "junk.pth is not a readable PyTorch weights file" in caplog.text
    (tmp_path / "five.pth").write_bytes(b"hello")  # torch's unpickler raises KeyError: 101 on it (issue 24)
    caplog.clear()
    assert cli(data_dir, "model", "new", "--project", "pets", "--arch", "bcos_small", "--weights",
               str(tmp_path / "five.pth")) == 2
    assert "five.pth is not a readable PyTorch weights file (KeyError: 101)" in caplog.text
    assert "Traceback" not in caplog.text and "copy it again or pick another" in caplog.text
    assert cli(data_dir, "model", "list", "--project", "pets") == 0
    assert "has no models yet" in capsys.readouterr().out
    assert cli(data_dir, "model", "new", "--project", "zoo", "--arch", "bcos_small", "--json") == 0
    other = last_json(capsys.readouterr().out)["checkpoint_id"]
    caplog.clear()
    assert cli(data_dir, "model", "activate", "--project", "pets", "--checkpoint", str(other)) == 2
    assert "belongs to another project" in caplog.text and "nothing activated" in caplog.text
    assert cli(data_dir, "model", "activate", "--project", "pets", "--checkpoint", "latest") == 2
    assert "'latest' is not a checkpoint id" in caplog.text
    assert cli(data_dir, "model", "list", "--project", "pest") == 2


def test_model_new_from_weights_replaces_the_head_when_classes_differ(photos: Path, data_dir: Path,
                                                                      tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str],
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    import torchvision

    from core.bcos import build_model
    from core.train import load_checkpoint

    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets") == 0
    torch.manual_seed(3)
    native = build_model("bcos_small", 5)
    release = tmp_path / "bcos_small-5-classes.pth"  # a state dict, as B-cos v2 releases them
    torch.save(native.state_dict(), release)
    assert cli(data_dir, "model", "new", "--project", "pets", "--arch", "bcos_small", "--weights", str(release),
               "--json") == 0
    made = last_json(capsys.readouterr().out)
    assert (made["source"], made["file_classes"], made["replaced"]) == ("state dict", 5, ["fc.linear.weight"])
    assert "the 5-class head was replaced by a new 2-class head" in made["message"]
    loaded = load_checkpoint(Path(made["path"]), expected_classes=list(CLASSES)).model.state_dict()
    assert torch.equal(loaded["layer2.0.conv1.linear.weight"], native.state_dict()["layer2.0.conv1.linear.weight"])
    assert cli(data_dir, "model", "new", "--project", "pets", "--arch", "bcos_small", "--weights", made["path"],
               "--json") == 0
    assert last_json(capsys.readouterr().out)["replaced"] == []  # a checkpoint of the same classes: head kept
    insects = tmp_path / "insects"
    for k, name in enumerate(("ant", "bee")):
        photo(insects / name / "1.png", (32, 32), (2, 2, 9, 9), k)
    assert cli(data_dir, "import", "folder", str(insects), "--project", "insects") == 0
    assert cli(data_dir, "model", "new", "--project", "insects", "--arch", "bcos_small", "--weights", made["path"],
               "--json") == 0
    other = last_json(capsys.readouterr().out)  # two classes too, but other ones: the head means something else
    assert other["replaced"] == ["fc.linear.weight"] and "the file's classes are other classes" in other["message"]
    broken = native.state_dict()
    broken["layer1.0.conv1.linear.weight"][0, 0, 0, 0] = float("nan")
    torch.save(broken, tmp_path / "nan.pth")
    assert cli(data_dir, "model", "new", "--project", "pets", "--arch", "bcos_small", "--weights",
               str(tmp_path / "nan.pth")) == 2
    assert "nan.pth holds non-finite weights (NaN or infinity) in layer1.0.conv1.linear.weight" in caplog.text
    tv = tmp_path / "resnet18-imagenet.pth"
    torch.save(torchvision.models.resnet18(num_classes=1000).state_dict(), tv)
    assert cli(data_dir, "model", "new", "--project", "pets", "--arch", "bcosified_resnet18", "--weights", str(tv),
               "--json") == 0
    converted = last_json(capsys.readouterr().out)
    assert (converted["source"], converted["file_classes"], converted["activated"]) == ("torchvision", 1000, False)
    assert converted["replaced"] == ["head.linear.weight"] and "B-cosified" in converted["message"]


def test_bcosified_densenet121_converts_and_explains_a_tiny_input(tmp_path: Path) -> None:
    """The README promises DenseNet-121: a torchvision file converts, predicts and explains at 32 px."""
    import torchvision

    from core.bcos import model_from_weights
    from core.explain import EXPLAINERS

    weights = tmp_path / "densenet121.pth"
    torch.save(torchvision.models.densenet121(num_classes=10).state_dict(), weights)
    model, transfer = model_from_weights("bcosified_densenet121", 3, weights)
    assert transfer.source == "torchvision" and transfer.replaced == ("head.linear.weight",)
    with EXPLAINERS["bcos"](model.eval(), layer="input") as explainer:
        out = explainer.attribute_detached(torch.rand(1, 3, 32, 32), torch.tensor([2]))
    assert out.logits.shape == (1, 3) and out.maps.shape == (1, 32, 32) and bool(torch.isfinite(out.maps).all())


def test_bcosify_recipe_is_one_command(photos: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from services.model_factory import recovery_settings

    assert recovery_settings(3) == {"lam": 0.0, "lr": 1e-4, "schedule": "fixed", "epochs": 3}
    with pytest.raises(ValueError, match="at least 1"):
        recovery_settings(0)
    assert cli(data_dir, "import", "folder", str(photos), "--project", "pets") == 0
    assert cli(data_dir, "model", "new", "--project", "pets", "--arch", "bcos_small", "--recover-epochs", "1",
               "--max-steps-per-epoch", "1", "--json") == 0
    out = last_json(capsys.readouterr().out)
    recovery = out["recovery"]
    assert recovery["status"] == "succeeded"
    assert (recovery["config"]["lam"], recovery["config"]["lr"], recovery["config"]["freeze_norm"]) == (0.0, 1e-4,
                                                                                                        "no")
    assert recovery["active_checkpoint_id"] == recovery["best_checkpoint_id"] != out["checkpoint_id"]
