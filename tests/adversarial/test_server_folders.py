"""Issue 24 item 1: the Data tab's "folder on the server" imports only from folders the operator allowed.

`/`, `/etc`, `../../..`, a link or a `..` leading out of an allowed folder are refused before anything there is
listed or read, and the refusal names no server path but the one typed. The operator's own command line
(`python app.py import folder`) still reads any folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

import app
from services import import_roots, zip_import
from services.settings import Settings
from tests.adversarial.conftest import Cli, row_counts
from tests.adversarial.test_imports import image_count
from tests.store.conftest import write_image


def class_folder(root: Path) -> Path:
    """`root/cat/a.png`, `root/dog/b.png` (two small images)."""
    write_image(root / "cat" / "a.png", color=(200, 10, 10))
    write_image(root / "dog" / "b.png", color=(10, 10, 200))
    return root


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A folder outside every import root, holding a data set and a groups.csv (what `/` used to list)."""
    folder = class_folder(tmp_path / "secret" / "set")
    (folder / "groups.csv").write_text("file,group\ncat/a.png,private\n", "utf-8")
    return folder.parent


def import_typed(engine: Engine, settings: Settings, typed: str, project: str = "p") -> zip_import.DataImport:
    return zip_import.import_folder(engine, settings, typed, zip_import.ImportOptions(), project=project)


def assert_names_only(message: str, typed: str, tmp_path: Path) -> None:
    """The refusal names the path typed and no other place on the server."""
    rest = message.replace(typed, "")
    assert str(tmp_path) not in rest and "groups.csv" not in rest and "/etc" not in rest, message


ESCAPES = {
    "the filesystem root": lambda data, secret: "/",
    "a system folder": lambda data, secret: "/etc",
    "dot-dot from the working folder": lambda data, secret: "../../..",
    "dot-dot out of the imports folder": lambda data, secret: "../../secret/set",
    "an absolute path climbing out": lambda data, secret: f"{data}/imports/../../secret/set",
    "the data dir itself": lambda data, secret: str(data),
    "a folder outside the roots": lambda data, secret: str(secret / "set"),
}


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_a_folder_outside_the_import_roots_is_refused_before_anything_is_listed(
        engine: Engine, tmp_path: Path, secret: Path, escape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    (data / "imports").mkdir(parents=True)
    settings = Settings(data_dir=data)
    typed = ESCAPES[escape](data, secret)
    rows = row_counts(engine)
    listed: list[str] = []

    def no_listing(*args: object, **kwargs: object) -> None:
        listed.append(str(args[0]) if args else "")
        raise AssertionError("listed a folder before the check")

    monkeypatch.setattr(os, "scandir", no_listing)
    monkeypatch.setattr(os, "listdir", no_listing)
    with pytest.raises(ValueError, match="is not inside a folder this server imports from") as refused:
        import_typed(engine, settings, typed)
    assert listed == [] and row_counts(engine) == rows
    assert repr(typed) in str(refused.value) and "--import-root" in str(refused.value)
    assert_names_only(str(refused.value), typed, tmp_path)


def test_a_link_inside_the_imports_folder_leading_out_is_refused(engine: Engine, tmp_path: Path,
                                                                 secret: Path) -> None:
    data = tmp_path / "data"
    (data / "imports").mkdir(parents=True)
    (data / "imports" / "innocent").symlink_to(secret / "set", target_is_directory=True)
    with pytest.raises(ValueError, match="not inside a folder this server imports from") as refused:
        import_typed(engine, Settings(data_dir=data), "innocent")
    assert_names_only(str(refused.value), "innocent", tmp_path)


def test_a_link_leading_out_of_an_allowed_folder_is_refused_naming_it_under_the_path_typed(
        engine: Engine, tmp_path: Path, secret: Path) -> None:
    allowed = tmp_path / "datasets"
    folder = class_folder(allowed / "pets")
    (folder / "cat" / "stolen.png").symlink_to(secret / "set" / "cat" / "a.png")
    settings = Settings(data_dir=tmp_path / "data", import_roots=(allowed,))
    rows = row_counts(engine)
    typed = str(allowed / "pets")
    with pytest.raises(ValueError) as refused:
        import_typed(engine, settings, typed)
    assert f"'{typed}/cat/stolen.png' is a link leading out of the folder" in str(refused.value)
    assert_names_only(str(refused.value), typed, tmp_path)
    assert row_counts(engine) == rows


def test_an_allowed_folder_imports_by_full_path_or_by_name_and_reports_no_other_path(engine: Engine,
                                                                                    tmp_path: Path) -> None:
    allowed = tmp_path / "datasets"
    class_folder(allowed / "pets")
    class_folder(tmp_path / "data" / "imports" / "mine")
    settings = Settings(data_dir=tmp_path / "data", import_roots=(allowed,))
    done = import_typed(engine, settings, "pets", project="by-name")  # a name alone is looked up in the roots
    assert done.result.images_added == 2 and "  layout: class folders in pets" in done.report
    assert not any(str(tmp_path) in line for line in done.report), done.report
    assert import_typed(engine, settings, str(allowed / "pets"), project="by-path").result.images_added == 2
    assert import_typed(engine, settings, "mine", project="own").result.images_added == 2  # the imports folder
    with pytest.raises(ValueError, match="'nothing-here' is not a folder in the folders this server imports from"):
        import_typed(engine, settings, "nothing-here")


def test_the_operators_command_line_still_imports_any_folder(cli: Cli, secret: Path) -> None:
    assert cli("import", "folder", str(secret / "set"), "--project", "p") == 0
    assert image_count(cli.engine) == 2


def test_serve_takes_import_roots_from_a_repeatable_flag_or_the_environment(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    args = app.build_parser().parse_args(["serve", "--import-root", str(a), "--import-root", str(b)])
    assert app.settings_from_args(args).import_roots == (a, b)
    monkeypatch.setenv("GUIDANCE_IMPORT_ROOTS", f"{a}{os.pathsep}{b}")
    assert app.settings_from_args(app.build_parser().parse_args(["serve"])).import_roots == (a, b)
    monkeypatch.delenv("GUIDANCE_IMPORT_ROOTS")
    assert app.settings_from_args(app.build_parser().parse_args(["serve"])).import_roots == ()
    settings = Settings(data_dir=tmp_path / "data", import_roots=(a,))
    assert import_roots.import_roots(settings) == (a.resolve(), (tmp_path / "data" / "imports").resolve())


def test_serve_refuses_an_import_root_that_is_not_a_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    assert app.main(["--data-dir", str(data), "serve", "--import-root", str(tmp_path / "missing")]) == 2
    assert f"--import-root {tmp_path / 'missing'} is not a folder" in caplog.text
    assert not (data / "studio.db").exists()  # refused before anything was made or served


def test_a_coco_file_name_leading_out_is_refused_without_naming_where_it_leads(engine: Engine, tmp_path: Path,
                                                                              secret: Path) -> None:
    coco = tmp_path / "data" / "imports" / "coco"
    write_image(coco / "images" / "a.png")
    target = secret / "set" / "cat" / "a.png"
    (coco / "instances.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "../../../../secret/set/cat/a.png"},
                   {"id": 3, "file_name": str(target)}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}]}), "utf-8")
    with pytest.raises(ValueError) as refused:
        import_typed(engine, Settings(data_dir=tmp_path / "data"), "coco")
    message = str(refused.value)
    assert "instances.json: images[1].file_name: the image lies outside the data set" in message
    assert "instances.json: images[2].file_name: the image lies outside the data set" in message
    assert_names_only(message, "coco", tmp_path)
    assert "--allow-outside" not in message  # a flag of the command line, which a browser user has not


def test_a_server_folder_is_bounded_in_entries_and_in_the_files_a_refusal_lists(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = class_folder(tmp_path / "data" / "imports" / "set")
    for i in range(8):
        (folder / f"copy{i}").mkdir()
        (folder / f"copy{i}" / "groups.csv").write_text("file,group\n", "utf-8")
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(ValueError, match=r"several groups\.csv files \(copy0/groups\.csv, .*copy4/groups\.csv and 3 "
                                         r"more\); keep one"):
        import_typed(engine, settings, "set")
    monkeypatch.setattr(import_roots, "MAX_FOLDER_ENTRIES", 5)
    with pytest.raises(ValueError, match=r"'set' holds more than 5 files and folders; import a smaller folder"):
        import_typed(engine, settings, "set")
