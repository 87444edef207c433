"""Hostile and broken data sets through `python app.py import ...` (issue 15).

A refusal exits 2, names the file, line or field and says what to do, and leaves every database row
and every file exactly as it was (checked with row counts and file hashes). Runs on SQLite and, when
`TEST_DATABASE_URL` is set, on PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import Engine

import store
from services.settings import Settings
from store.io.plan import MAX_IMAGE_PIXELS
from tests.adversarial.conftest import Cli, row_counts, tree_state
from tests.store.conftest import write_image
from tests.store.test_io import VOC_OBJECT, VOC_XML, make_voc


@pytest.fixture
def sets(tmp_path: Path) -> Path:
    """Where the test's data sets live (the database lives elsewhere)."""
    return tmp_path / "sets"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A readable image outside every data set."""
    return write_image(tmp_path / "secret" / "s.jpg", color=(9, 9, 9))


@pytest.fixture
def voc(sets: Path) -> Path:
    return make_voc(sets / "VOC2012", {"a": [("cat", (1, 1, 10, 10), 0)]}, {"train": ["a"]})


def coco(sets: Path, *, images: list[dict] | None = None, categories: list[dict] | None = None,
         annotations: str | list[dict] | None = None) -> Path:
    """`sets/coco/instances.json` over `sets/coco/images/a.png`; `annotations` may be raw JSON text."""
    write_image(sets / "coco" / "images" / "a.png")
    images = images if images is not None else [{"id": 1, "file_name": "a.png"}]
    categories = categories if categories is not None else [{"id": 1, "name": "cat"}]
    annotations = annotations if annotations is not None else [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}]
    raw = annotations if isinstance(annotations, str) else json.dumps(annotations)
    path = sets / "coco" / "instances.json"
    path.write_text(f'{{"images": {json.dumps(images)}, "categories": {json.dumps(categories)}, '
                    f'"annotations": {raw}}}', "utf-8")
    return path


def import_coco(cli: Cli, json_path: Path, *extra: str) -> int:
    return cli("import", "coco", str(json_path), "--images", str(json_path.parent / "images"), "--project", "p",
               *extra)


def refused(cli: Cli, sets: Path, caplog: pytest.LogCaptureFixture, command: tuple[str, ...] | None = None,
            run: object = None) -> str:
    """Run the import; assert exit 2 with nothing written (rows, data set and data dir files); the log text."""
    rows, files, data = row_counts(cli.engine), tree_state(sets), tree_state(cli.data_dir)
    caplog.clear()
    code = run() if callable(run) else cli(*(command or ()))
    assert code == 2, caplog.text
    assert row_counts(cli.engine) == rows
    assert tree_state(sets) == files and tree_state(cli.data_dir) == data
    assert "nothing written" in caplog.text
    return caplog.text


def image_count(engine: Engine, project: str = "p") -> int:
    with store.session_scope(engine) as session:
        return next(p.images for p in store.list_projects(session) if p.name == project)


# --- item 4: NaN and infinite coordinates ---------------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e400"])
def test_voc_non_finite_coordinate_is_refused_with_file_and_field(cli: Cli, sets: Path, voc: Path, value: str,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    (voc / "Annotations" / "a.xml").write_text(VOC_XML.format(
        file="a.jpg", objects=VOC_OBJECT.format(name="cat", b=(value, 1, 10, 10), difficult=0)), "utf-8")
    text = refused(cli, sets, caplog, ("import", "voc", str(voc), "--project", "p"))
    assert f"Annotations/a.xml: object[0]/bndbox/xmin: {value!r} is not a finite number" in text


@pytest.mark.parametrize("bbox", ["[10, 10, NaN, 20]", "[10, 10, Infinity, 20]", "[-Infinity, 1, 5, 5]",
                                  "[10, 10, 1e400, 20]", "[1e308, 0, 1e308, 5]"])
def test_coco_non_finite_bbox_is_refused_with_file_and_field(cli: Cli, sets: Path, bbox: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    path = coco(sets, annotations=f'[{{"id": 1, "image_id": 1, "category_id": 1, "bbox": {bbox}}}]')
    text = refused(cli, sets, caplog, run=lambda: import_coco(cli, path))
    assert "instances.json: annotations[0].bbox: " in text and "finite" in text


# --- item 7: raw tracebacks on absurd JSON ------------------------------------------------------------------

def test_coco_bbox_beyond_float_range_is_refused(cli: Cli, sets: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = coco(sets, annotations=f'[{{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, {10 ** 400}, 5]}}]')
    text = refused(cli, sets, caplog, run=lambda: import_coco(cli, path))
    assert "instances.json: annotations[0].bbox: " in text and "finite" in text


def test_coco_json_nested_200000_deep_is_refused(cli: Cli, sets: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = coco(sets, annotations="[" * 200_000 + "]" * 200_000)
    text = refused(cli, sets, caplog, run=lambda: import_coco(cli, path))
    assert "instances.json: nested too deeply" in text


def test_coco_number_with_5000_digits_is_refused(cli: Cli, sets: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = coco(sets, annotations=f'[{{"id": 1, "image_id": 1, "category_id": 1, "bbox": [{"9" * 5000}, 1, 1, 1]}}]')
    text = refused(cli, sets, caplog, run=lambda: import_coco(cli, path))
    assert "instances.json: a number with more than 4300 digits" in text


# --- item 8: errors without a location ----------------------------------------------------------------------

def test_voc_split_list_not_utf8_names_file_and_line(cli: Cli, sets: Path, voc: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    (voc / "ImageSets" / "Main" / "train.txt").write_bytes(b"a\nb\xe9b\xe9\n")
    text = refused(cli, sets, caplog, ("import", "voc", str(voc), "--project", "p"))
    assert "ImageSets/Main/train.txt:2: not UTF-8 text" in text and "save it as UTF-8" in text


def test_folder_groups_csv_not_utf8_names_file_and_line(cli: Cli, sets: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    write_image(sets / "f" / "cat" / "a.jpg")
    (sets / "groups.csv").write_bytes(b"file,group\na.jpg,\xe9t\xe9\n")
    text = refused(cli, sets, caplog, ("import", "folder", str(sets / "f"), "--groups", str(sets / "groups.csv"),
                                       "--project", "p"))
    assert "groups.csv:2: not UTF-8 text" in text


@pytest.mark.parametrize("name", ["", "   "])
def test_coco_blank_category_name_names_the_category(cli: Cli, sets: Path, name: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = coco(sets, categories=[{"id": 1, "name": "cat"}, {"id": 4, "name": name}])
    text = refused(cli, sets, caplog, run=lambda: import_coco(cli, path))
    assert "instances.json: categories[1].name: blank (category id 4); give every category a name" in text


# --- item 9: files outside the data set ---------------------------------------------------------------------

def _voc_filename(voc: Path, filename: str) -> None:
    (voc / "Annotations" / "a.xml").write_text(VOC_XML.format(
        file=filename, objects=VOC_OBJECT.format(name="cat", b=(1, 1, 10, 10), difficult=0)), "utf-8")


def _voc_symlink(voc: Path, secret: Path) -> None:
    (voc / "JPEGImages" / "a.jpg").unlink()
    (voc / "JPEGImages" / "a.jpg").symlink_to(secret)


VOC_ESCAPES = {
    "absolute filename": lambda voc, secret: _voc_filename(voc, str(secret)),
    "dot-dot filename": lambda voc, secret: _voc_filename(voc, "../../../secret/s.jpg"),
    "symlink in JPEGImages": _voc_symlink,
}


@pytest.mark.parametrize("escape", sorted(VOC_ESCAPES))
def test_voc_image_outside_the_data_set_is_refused(cli: Cli, sets: Path, voc: Path, secret: Path, escape: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    VOC_ESCAPES[escape](voc, secret)
    text = refused(cli, sets, caplog, ("import", "voc", str(voc), "--project", "p"))
    assert (f"Annotations/a.xml: filename: the image resolves to {secret.resolve()}, outside the data set folder "
            f"{voc}") in text
    assert "--allow-outside" in text
    assert cli("import", "voc", str(voc), "--project", "p", "--allow-outside") == 0
    assert image_count(cli.engine) == 1


@pytest.mark.parametrize("file_name", ["absolute", "../../../secret/s.jpg", "link.jpg"])
def test_coco_image_outside_the_data_set_is_refused(cli: Cli, sets: Path, secret: Path, file_name: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    if file_name == "absolute":
        file_name = str(secret)
    path = coco(sets, images=[{"id": 1, "file_name": file_name}])
    if file_name == "link.jpg":
        (path.parent / "images" / "link.jpg").symlink_to(secret)
    text = refused(cli, sets, caplog, run=lambda: import_coco(cli, path))
    assert (f"instances.json: images[0].file_name: the image resolves to {secret.resolve()}, outside the data set "
            "folder") in text
    assert "--allow-outside" in text
    assert import_coco(cli, path, "--allow-outside") == 0
    assert image_count(cli.engine) == 1


@pytest.mark.parametrize("link", ["file", "class folder"])
def test_folder_symlink_outside_the_data_set_is_refused(cli: Cli, sets: Path, secret: Path, link: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    write_image(sets / "f" / "cat" / "a.jpg")
    if link == "file":
        (sets / "f" / "cat" / "b.jpg").symlink_to(secret)
        rel = "cat/b.jpg"
    else:
        (sets / "f" / "dog").symlink_to(secret.parent, target_is_directory=True)
        rel = "dog/s.jpg"
    text = refused(cli, sets, caplog, ("import", "folder", str(sets / "f"), "--project", "p"))
    assert f"{rel}: the image resolves to {secret.resolve()}, outside the data set folder" in text
    assert cli("import", "folder", str(sets / "f"), "--project", "p", "--allow-outside") == 0
    assert image_count(cli.engine) == 2


# --- item 11: duplicate ids, huge images, empty classes, login ----------------------------------------------

def test_duplicate_coco_annotation_ids_are_refused(cli: Cli, sets: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = coco(sets, annotations=[{"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                                   {"id": 8, "image_id": 1, "category_id": 1, "bbox": [2, 2, 5, 5]},
                                   {"id": 7, "image_id": 1, "category_id": 1, "bbox": [3, 3, 5, 5]}])
    text = refused(cli, sets, caplog, run=lambda: import_coco(cli, path))
    assert "instances.json: annotations[2].id: 7 used twice (also annotations[0])" in text


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's warning; ours is the refusal
def test_image_above_the_pixel_limit_is_refused_with_name_and_size(cli: Cli, sets: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    write_image(sets / "f" / "cat" / "a.jpg")
    big = sets / "f" / "cat" / "big.png"
    PILImage.new("1", (12_000, 12_000)).save(big)  # 144 Mpx, a few kB: only a warning from Pillow
    text = refused(cli, sets, caplog, ("import", "folder", str(sets / "f"), "--project", "p"))
    assert (f"cat/big.png: 12000x12000 pixels (144.0 Mpx) is more than the {MAX_IMAGE_PIXELS // 10 ** 6} Mpx limit"
            in text)
    assert "downscale it or remove it" in text


def test_folder_class_left_without_images_is_reported(cli: Cli, sets: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_image(sets / "f" / "cat" / "a.jpg")
    (sets / "f" / "bird").mkdir()
    (sets / "f" / "bird" / "README.txt").write_text("photos to come", "utf-8")
    (sets / "f" / "dog").mkdir()
    (sets / "f" / "dog" / "broken.jpg").write_bytes(b"not an image")
    assert cli("import", "folder", str(sets / "f"), "--project", "p") == 0
    out = capsys.readouterr().out
    assert "skipped class 'bird': no images in bird/; class not created" in out
    assert "skipped class 'dog': none of its images could be read; class not created" in out
    with store.session_scope(cli.engine) as session:
        assert [c.name for c in store.get_project(session, "p").classes] == ["cat"]


@pytest.mark.parametrize("auth", ["user :pass", " user:pass", "user:pass ", "user:", ":pass", "userpass"])
def test_login_with_spaces_around_user_or_password_is_refused(auth: str) -> None:
    with pytest.raises(ValueError, match=r"--auth .*GUIDANCE_AUTH"):
        _ = Settings(auth=auth).auth_pair
    assert Settings(auth="user:pa ss").auth_pair == ("user", "pa ss")


# --- item 12: VOC image ids with spaces ---------------------------------------------------------------------

def test_voc_image_id_with_space_is_imported(cli: Cli, sets: Path, capsys: pytest.CaptureFixture[str]) -> None:
    voc = make_voc(sets / "VOC2012", {"img with space": [("cat", (1, 1, 10, 10), 0)],
                                      "plain": [("cat", (2, 2, 10, 10), 0)], "neg": [("dog", (3, 3, 10, 10), 0)]},
                   {"train": ["img with space", "plain  1", "neg -1"]})
    assert cli("import", "voc", str(voc), "--project", "p") == 0
    assert "3 images added" in capsys.readouterr().out
    with store.session_scope(cli.engine) as session:
        rows, _ = store.page_images(session, store.get_project(session, "p").id)
        assert sorted(Path(r.path).name for r in rows) == ["img with space.jpg", "neg.jpg", "plain.jpg"]


# --- issue 24 item 6: the 500-boxes-per-image limit holds on every way in ----------------------------------------


def test_an_import_over_500_boxes_on_one_image_is_refused_naming_it(cli: Cli, sets: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    many = [{"id": i, "image_id": 1, "category_id": 1, "bbox": [i % 30, i // 30, 2, 2]} for i in range(501)]
    path = coco(sets, annotations=many)
    text = refused(cli, sets, caplog, run=lambda: import_coco(cli, path))
    assert "a.png: 501 boxes on one image" in text and "limit of 500 boxes per image" in text
    assert import_coco(cli, coco(sets, annotations=many[:500])) == 0  # the limit itself is allowed
    assert import_coco(cli, coco(sets, annotations=[  # 500 there already: one more through a later import is not
        {"id": 9, "image_id": 1, "category_id": 1, "bbox": [35, 25, 2, 2]}])) == 2
    assert "a.png: 501 boxes on one image (those it has and those imported)" in caplog.text


# --- issue 24 item 10: a report counts the images that were stored ----------------------------------------------


def test_identical_files_are_reported_as_the_images_stored(cli: Cli, sets: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(12):  # twelve copies of one red image, one blue image
        write_image(sets / "folder" / "red" / f"copy{i:02d}.png", color=(200, 10, 10))
    write_image(sets / "folder" / "blue" / "b.png", color=(10, 10, 200))
    assert cli("import", "folder", str(sets / "folder"), "--project", "p", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert image_count(cli.engine) == 2
    reported = sum(n for per_class in out["split_counts"].values() for n in per_class.values())
    assert reported == 2, out["split_counts"]  # was 13: one line per file, not per image stored
    assert {c for per_class in out["split_counts"].values() for c in per_class} == {"red", "blue"}
