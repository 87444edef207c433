"""Issue 24 items 4, 5, 7 and 12: what an import accepts, and what it leaves behind.

- 4: every image is decoded fully (a truncated JPEG or PNG is skipped and named); a zip is bounded by a compression
  ratio and a byte limit, from its directory and again while extracting; an import that ends leaves on disk only
  the images it imported.
- 5: a report lists the first problems and counts the others, however long the CSV.
- 7: names users chose (project, class) show as text on the Data tab.
- 12: a name the database cannot store (NUL, longer than its column, not Unicode) is a refusal naming the row,
  folder or field, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import Engine

import store
from services import zip_import
from services.settings import Settings
from store.errors import ImportFormatError
from store.io.report import REPORT_LIMIT
from tests.adversarial.conftest import Cli, row_counts
from tests.adversarial.test_imports import image_count, refused
from tests.store.conftest import write_image


def image_bytes(fmt: str, color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    """A noisy image (so the compressed data is long enough to cut) in `fmt`."""
    pixels = PILImage.effect_noise(size, 60).convert("RGB")
    pixels.paste(color, (0, 0, 8, 8))
    out = io.BytesIO()
    pixels.save(out, format=fmt)
    return out.getvalue()


def write_zip(path: Path, files: dict[str, bytes], *, compression: int = zipfile.ZIP_STORED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def import_zip(engine: Engine, data: Path, archive: Path, project: str = "p") -> zip_import.DataImport:
    return zip_import.import_zip(engine, Settings(data_dir=data), archive, zip_import.ImportOptions(),
                                 project=project)


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


# --- item 4: images decoded fully; zips bounded; only imported files stay ----------------------------------------

def test_truncated_images_are_skipped_by_name_and_only_imported_files_stay(engine: Engine, tmp_path: Path) -> None:
    jpeg, png = image_bytes("JPEG", (200, 0, 0)), image_bytes("PNG", (0, 0, 200))
    files = {"set/cat/good.jpg": jpeg, "set/cat/cut.jpg": jpeg[: len(jpeg) // 2],
             "set/dog/good.png": png, "set/dog/cut.png": png[: len(png) * 2 // 3],
             "set/dog/same.png": png,  # identical to good.png: stored once
             "set/README.txt": b"not an image", "set/groups.csv": b"file,group\ncat/good.jpg,indoor\n"}
    data = tmp_path / "data"
    done = import_zip(engine, data, write_zip(tmp_path / "set.zip", files))
    report = "\n".join(done.report)
    assert done.result.images_added == 2, report
    assert "skipped cat/cut.jpg: unreadable image, truncated or damaged" in report
    assert "skipped dog/cut.png: unreadable image, truncated or damaged" in report
    with store.session_scope(engine) as session:
        rows, _ = store.page_images(session, store.get_project(session, "p").id)
        stored = {Path(r.path).relative_to(Path("imports") / "p").as_posix() for r in rows}
    assert files_under(data / "imports" / "p") == stored  # nothing else stays: no CSV, README, cut or duplicate
    assert len(stored) == 2 and "the 2 imported images stay in the server's imports/p/" in report
    assert str(tmp_path) not in report


def test_a_zip_of_zeros_is_refused_from_its_directory_and_leaves_nothing(engine: Engine, tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "bomb.zip", {"cat/a.png": b"\0" * 30_000_000}, compression=zipfile.ZIP_DEFLATED)
    assert archive.stat().st_size < 100_000  # ~1000x
    data = tmp_path / "data"
    rows = row_counts(engine)
    with pytest.raises(ValueError, match=r"bomb\.zip declares 28\.6 MiB uncompressed, more than the .* a zip of .* "
                                         r"KiB may expand to \(100× its size.*zip bomb"):
        import_zip(engine, data, archive)
    assert files_under(data / "imports") == set() and row_counts(engine) == rows


def test_the_ratio_and_byte_limits_hold_while_extracting_whatever_the_directory_says(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zip_import, "check_directory", lambda *args: None)  # a directory that passes every check
    archive = write_zip(tmp_path / "bomb.zip", {"cat/a.png": image_bytes("PNG", (1, 2, 3)),
                                                "dog/zeros.png": b"\0" * 30_000_000}, compression=zipfile.ZIP_DEFLATED)
    data = tmp_path / "data"
    with pytest.raises(ValueError, match=r"bomb\.zip: entry 'dog/zeros\.png' expands more than 100×.*nothing was "
                                         "extracted"):
        import_zip(engine, data, archive)
    assert list((data / "imports").rglob("*")) == []  # not even the hidden partial folder
    monkeypatch.setattr(zip_import, "RATIO_FREE_BYTES", 40_000_000)  # the entry may expand so far...
    monkeypatch.setattr(zip_import, "MAX_ZIP_BYTES", 10_000_000)  # ...the whole zip may not
    with pytest.raises(ValueError, match=r"bomb\.zip expands to more than .* MiB while extracting"):
        import_zip(engine, data, archive)
    assert list((data / "imports").rglob("*")) == []


def test_a_refused_zip_import_leaves_nothing_in_imports(engine: Engine, tmp_path: Path) -> None:
    files = {"cat/a.png": image_bytes("PNG", (9, 9, 9)), "cow/b.png": image_bytes("PNG", (1, 9, 9)),
             "boxes.csv": b"file,label,x0,y0,x1,y1\ncat/a.png,dog,1,1,5,5\n"}
    data = tmp_path / "data"
    with pytest.raises(ImportFormatError, match=r"boxes\.csv:2 \(dog\): label 'dog' is not a class"):
        import_zip(engine, data, write_zip(tmp_path / "set.zip", files))
    assert files_under(data / "imports") == set() and list((data / "imports").iterdir()) == []


# --- item 5: bounded reports -----------------------------------------------------------------------------------

def test_a_groups_csv_of_100000_unknown_rows_gives_a_short_report(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "data" / "imports" / "set"
    write_image(folder / "cat" / "a.png")
    write_image(folder / "dog" / "b.png", color=(1, 2, 3))
    rows = "".join(f"missing/{i}.png,g\n" for i in range(100_000))
    (folder / "groups.csv").write_text("file,group\n" + rows, "utf-8")
    done = zip_import.import_folder(engine, Settings(data_dir=tmp_path / "data"), "set", zip_import.ImportOptions(),
                                    project="p")
    report = "\n".join(done.report)
    assert done.result.skipped_total == 100_000 and len(done.result.skipped) == REPORT_LIMIT
    assert "100,000 skipped" in done.report[0]
    assert sum(line.startswith("  skipped ") for line in done.report) == REPORT_LIMIT
    assert ("... and 99,980 more not listed (99,980 × unknown file …: no such image under the data set folder)"
            in report)
    assert len(report) < 5_000, len(report)


def test_a_boxes_csv_of_50000_problems_is_refused_with_a_short_message(cli: Cli, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    sets = tmp_path / "sets"
    write_image(sets / "f" / "cat" / "a.png", size=(40, 30))
    off = "".join(f"a.png,cat,{100 + i},1,{200 + i},5\n" for i in range(50_000))  # off the image: skipped
    unknown = "".join(f"b{i}.png,cat,1,1,5,5\n" for i in range(50_000))  # unknown files: problems
    (sets / "boxes.csv").write_text("file,label,x0,y0,x1,y1\n" + off + unknown, "utf-8")
    text = refused(cli, sets, caplog, ("import", "folder", str(sets / "f"), "--boxes", str(sets / "boxes.csv"),
                                       "--project", "p"))
    assert "50,000 problems in the input, nothing imported" in text
    assert "boxes.csv:50002: unknown file 'b0.png'" in text
    assert "... and 49,980 more not listed (49,980 × unknown file …: no such image under the data set" in text
    assert len(text) < 10_000, len(text)
    (sets / "boxes.csv").write_text("file,label,x0,y0,x1,y1\n" + off, "utf-8")
    assert cli("import", "folder", str(sets / "f"), "--boxes", str(sets / "boxes.csv"), "--project", "p",
               "--json") == 0
    assert image_count(cli.engine) == 1


# --- item 7: names show as text ------------------------------------------------------------------------------------

def test_names_on_the_data_tab_show_as_text(engine: Engine, tmp_path: Path) -> None:
    import gradio as gr

    from ui.deps import build_deps
    from ui.handlers import data
    from ui.handlers.common import plain_markdown

    hostile = "<img src=x onerror=alert(1)>"
    folder = tmp_path / "data" / "imports" / "set"
    write_image(folder / hostile / "a.png")
    write_image(folder / "**bold**" / "b.png", color=(1, 2, 3))
    deps = build_deps(Settings(data_dir=tmp_path / "data"))
    report, _, project, _ = data.run_import(deps, None, "set", hostile, "auto", 0, 0, 0, None, None)
    assert project == hostile and f"train: **bold** 1, {hostile} 1" in report  # a Textbox: shown as typed
    shown = data.apply_image_size(deps, hostile, 64)  # Markdown: every mark escaped
    assert shown.startswith(plain_markdown(f"Project {hostile!r}")) and re.search(r"(?<!\\)[<*]", shown) is None
    with pytest.raises(gr.Error) as toast:  # a toast renders HTML: the name arrives escaped
        data.apply_image_size(deps, hostile + "2", 64)
    assert "&lt;img src=x onerror=alert(1)&gt;2" in toast.value.message and "<img" not in toast.value.message


# --- item 12: names the database cannot store --------------------------------------------------------------------

def test_groups_with_a_nul_or_too_long_are_refused_naming_the_row(cli: Cli, tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    sets = tmp_path / "sets"
    write_image(sets / "f" / "cat" / "a.png")
    write_image(sets / "f" / "cat" / "b.png", color=(1, 1, 1))
    (sets / "groups.csv").write_text(f"file,group\na.png,in\x00door\nb.png,{'g' * 300}\n", "utf-8")
    text = refused(cli, sets, caplog, ("import", "folder", str(sets / "f"), "--groups", str(sets / "groups.csv"),
                                       "--project", "p"))
    assert "groups.csv:2: group 'in\\x00door' holds a NUL character" in text
    assert "groups.csv:3: group 'ggg" in text and "is 300 characters long, more than the 200 it may have" in text


def test_class_names_the_database_cannot_store_are_refused_naming_where(cli: Cli, tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    sets = tmp_path / "sets"
    long_name = "c" * 250
    write_image(sets / "f" / long_name / "a.png")
    text = refused(cli, sets, caplog, ("import", "folder", str(sets / "f"), "--project", "p"))
    assert f"class folder {long_name}/: class name 'ccc" in text and "250 characters long" in text
    coco = sets / "coco"
    write_image(coco / "images" / "a.png")
    (coco / "instances.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1, "name": "ca\u0000t"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}]}), "utf-8")
    text = refused(cli, sets, caplog, ("import", "coco", str(coco / "instances.json"), "--images",
                                       str(coco / "images"), "--project", "p"))
    assert "instances.json: categories[0].name: class name 'ca\\x00t' holds a NUL character" in text


def test_a_file_name_that_is_not_utf8_is_refused_naming_it(cli: Cli, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    sets = tmp_path / "sets"
    write_image(sets / "f" / "cat" / "a.png")
    raw = bytes(sets / "f" / "cat") + b"/b\xff.png"  # a name made on a system that does not use UTF-8
    with open(raw, "wb") as out:
        out.write((sets / "f" / "cat" / "a.png").read_bytes()[:-1] + b"\x82")  # another sha256, same pixels
    text = refused(cli, sets, caplog, ("import", "folder", str(sets / "f"), "--project", "p"))
    assert "cat/b\\udcff.png: stored path" in text and "is not valid text" in text


@pytest.mark.parametrize("name", ["p\x00q", "p" * 201])
def test_a_project_name_the_database_cannot_store_is_refused(cli: Cli, tmp_path: Path, name: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    sets = tmp_path / "sets"
    write_image(sets / "f" / "cat" / "a.png")
    text = refused(cli, sets, caplog, ("import", "folder", str(sets / "f"), "--project", name))
    assert "project name" in text and ("NUL" in text or "201 characters long, more than the 200" in text)
