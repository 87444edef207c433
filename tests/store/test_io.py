"""Import (VOC, COCO, folder) and export (COCO, VOC): all-or-nothing, idempotent, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

import store
from tests.store.conftest import write_image

VOC_XML = """<annotation><filename>{file}</filename><size><width>40</width><height>30</height></size>
{objects}</annotation>"""
VOC_OBJECT = ("<object><name>{name}</name><difficult>{difficult}</difficult><truncated>0</truncated>"
              "<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>")


def make_voc(root: Path, images: dict[str, list[tuple[str, tuple, int]]], splits: dict[str, list[str]]) -> Path:
    """A VOC folder: {stem: [(class, (xmin, ymin, xmax, ymax), difficult)]}, split lists."""
    for k, (stem, objects) in enumerate(images.items()):
        write_image(root / "JPEGImages" / f"{stem}.jpg", color=(k * 20 % 256, 100, 50))
        xml = VOC_XML.format(file=f"{stem}.jpg", objects="".join(
            VOC_OBJECT.format(name=n, b=b, difficult=d) for n, b, d in objects))
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{stem}.xml").write_text(xml, encoding="utf-8")
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for split, stems in splits.items():
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(stems) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    return make_voc(tmp_path / "outside" / "VOC2012", {
        "käse_001": [("katze", (1, 1, 10, 10), 0), ("hund", (5, 5, 40, 30), 1)],  # touches the border
        "写真": [("hund", (2, 3, 20, 25), 0), ("hund", (30, 20, 50, 29), 0)],  # second box outside: skipped
    }, {"train": ["käse_001", "missing_one"], "val": ["写真"]})


def live_boxes(engine: Engine, project: str) -> set[tuple]:
    """{(image sha256, class, x0, y0, x1, y1, attributes as sorted items)} of the project's live boxes."""
    with store.session_scope(engine) as session:
        rows = session.execute(
            select(store.Image.sha256, store.Class.name, store.Box.x0, store.Box.y0, store.Box.x1, store.Box.y1,
                   store.Box.attributes)
            .join(store.Image, store.Image.id == store.Box.image_id).join(store.Class)
            .join(store.Project, store.Project.id == store.Image.project_id)
            .where(store.Project.name == project, store.Box.deleted_at.is_(None)))
        return {(*row[:6], tuple(sorted(row[6].items()))) for row in rows}


def do_import(engine: Engine, plan: store.ImportPlan, project: str, data_dir: Path) -> store.ImportSummary:
    with store.session_scope(engine) as session:
        return store.apply_plan(session, plan, project_name=project, data_dir=data_dir)


def test_voc_import_non_ascii_outside_data_dir_and_idempotent(engine: Engine, voc: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    summary = do_import(engine, store.parse_voc(voc.parent), "voc", data_dir)
    assert (summary.images_added, summary.labels_added, summary.boxes_added) == (2, 3, 3)
    reasons = " | ".join(f"{s.item}: {s.reason}" for s in summary.skipped)
    assert "missing_one" in reasons and "outside the 40x30 image" in reasons
    with store.session_scope(engine) as session:
        project = store.get_project(session, "voc")
        assert [c.name for c in project.classes] == ["hund", "katze"]
        rows, _ = store.page_images(session, project.id)
        assert {Path(r.path).name for r in rows} == {"käse_001.jpg", "写真.jpg"}
        assert all(Path(r.path).is_absolute() for r in rows)  # outside the data dir: absolute
        assert {r.split for r in rows} == {"train", "val"}
    assert ("hund" in {b[1] for b in live_boxes(engine, "voc")})
    assert any(dict(b[6]).get("difficult") is True for b in live_boxes(engine, "voc"))
    again = do_import(engine, store.parse_voc(voc), "voc", data_dir)
    assert (again.images_added, again.images_existing, again.boxes_added, again.boxes_existing) == (0, 2, 0, 3)


def test_broken_data_set_imports_nothing(engine: Engine, voc: Path, tmp_path: Path) -> None:
    (voc / "Annotations" / "broken.xml").write_text("<annotation><object><name>x</name>\n<bndbox>", "utf-8")
    (voc / "Annotations" / "bad_number.xml").write_text(VOC_XML.format(
        file="x.jpg", objects=VOC_OBJECT.format(name="x", b=(1, "one", 3, 4), difficult=0)), "utf-8")
    plan = store.parse_voc(voc)
    with pytest.raises(store.ImportFormatError) as info:
        do_import(engine, plan, "voc", tmp_path)
    text = str(info.value)
    assert "Annotations/broken.xml:2:" in text and "object[0]/bndbox/ymin: 'one' is not a number" in text
    with store.session_scope(engine) as session:
        assert store.list_projects(session) == []
        assert session.scalar(select(func.count()).select_from(store.Image)) == 0


def test_malformed_coco_names_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [\n  {"id": 1,}\n]}', "utf-8")
    assert store.parse_coco(bad, tmp_path).problems[0].startswith("bad.json:2:")
    bad.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 7, "name": "x"}],
                               "annotations": [{"image_id": 1, "category_id": 8, "bbox": [0, 0, 1, 1]},
                                               {"image_id": 1, "category_id": 7, "bbox": [0, 0, 1]}]}), "utf-8")
    problems = store.parse_coco(bad, tmp_path).problems
    assert problems == ["bad.json: annotations[0].category_id: 8 is not a category id",
                        "bad.json: annotations[1].bbox: expected [x, y, width, height] numbers, got [0, 0, 1]"]


def test_voc_round_trip(engine: Engine, voc: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    do_import(engine, store.parse_voc(voc), "first", data_dir)
    with store.session_scope(engine) as session:
        summary = store.export_voc(session, store.get_project(session, "first"), data_dir / "export",
                                   data_dir=data_dir)
    assert (summary.images, summary.boxes) == (2, 3)
    do_import(engine, store.parse_voc(data_dir / "export"), "second", data_dir)
    assert live_boxes(engine, "first") == live_boxes(engine, "second")
    with store.session_scope(engine) as session:  # inside the data dir: relative paths
        rows, _ = store.page_images(session, store.get_project(session, "second").id)
        assert {r.path for r in rows} == {"export/JPEGImages/käse_001.jpg", "export/JPEGImages/写真.jpg"}


def test_coco_round_trip_with_non_contiguous_ids(engine: Engine, tmp_path: Path) -> None:
    images_dir = tmp_path / "coco" / "images"
    write_image(images_dir / "ünïcode.png", (64, 48), (1, 2, 3))
    write_image(images_dir / "b.png", (64, 48), (4, 5, 6))
    source = {"images": [{"id": 10, "file_name": "ünïcode.png"}, {"id": 20, "file_name": "b.png"}],
              "categories": [{"id": 90, "name": "zebra"}, {"id": 3, "name": "ant"}],
              "annotations": [{"id": 1, "image_id": 10, "category_id": 90, "bbox": [0.1, 0.2, 10.3, 5], "iscrowd": 1},
                              {"id": 2, "image_id": 20, "category_id": 3, "bbox": [1, 1, 63, 47]}]}
    (tmp_path / "coco" / "instances.json").write_text(json.dumps(source), "utf-8")
    summary = do_import(engine, store.parse_coco(tmp_path / "coco" / "instances.json", images_dir, split="val"),
                        "coco", tmp_path)
    assert (summary.images_added, summary.boxes_added) == (2, 2)
    out = tmp_path / "out" / "coco.json"
    with store.session_scope(engine) as session:
        project = store.get_project(session, "coco")
        assert [c.name for c in project.classes] == ["ant", "zebra"]
        store.export_coco(session, project, out)
    exported = json.loads(out.read_text("utf-8"))
    assert {c["name"] for c in exported["categories"]} == {"ant", "zebra"}
    assert sorted(a["iscrowd"] for a in exported["annotations"]) == [0, 1]
    do_import(engine, store.parse_coco(out, tmp_path), "coco2", tmp_path)
    assert live_boxes(engine, "coco") == live_boxes(engine, "coco2")


def test_folder_import_with_groups_and_unreadable_image(engine: Engine, tmp_path: Path) -> None:
    root = tmp_path / "data" / "birds"
    write_image(root / "train" / "land" / "a.jpg", color=(1, 1, 1))
    write_image(root / "train" / "water" / "b.jpg", color=(2, 2, 2))
    write_image(root / "val" / "water" / "c.jpg", color=(3, 3, 3))
    (root / "val" / "water" / "broken.jpg").write_bytes(b"not an image")
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\na.jpg,land_bg\ntrain/water/b.jpg,water_bg\nnope.jpg,x\n", "utf-8")
    summary = do_import(engine, store.parse_folder(root, groups_csv=groups), "birds", tmp_path / "data")
    assert (summary.images_added, summary.labels_added, summary.boxes_added) == (3, 3, 0)
    reasons = [s.reason for s in summary.skipped]
    assert any("unreadable image" in r for r in reasons) and any("unknown file 'nope.jpg'" in r for r in reasons)
    with store.session_scope(engine) as session:
        project = store.get_project(session, "birds")
        assert project.task == "single_label"
        rows, total = store.page_images(session, project.id, group="water_bg")
        assert total == 1 and rows[0].path == "birds/train/water/b.jpg" and rows[0].split == "train"


def test_image_size_is_the_median_shorter_side_rounded_to_32_and_clamped() -> None:
    from store.io.plan import infer_image_size

    assert infer_image_size([(64, 48), (100, 64), (640, 480)]) == (64, 64)
    assert infer_image_size([(40, 30), (30, 40)]) == (32, 30)  # never below 32
    assert infer_image_size([(4000, 3000)] * 3) == (224, 3000)  # never above 224 (set larger with `project set`)
    assert infer_image_size([(80, 80), (96, 96)]) == (96, 88)  # even count: the mean of the middle two
    assert infer_image_size([]) == (224, 0)


def test_flat_folder_split_is_stratified_seeded_and_stable_when_images_are_added(tmp_path: Path) -> None:
    from store.io.folder import SplitRule

    root = tmp_path / "flat"
    for k, name in enumerate(("a", "b")):
        for i in range(20 + 10 * k):
            write_image(root / name / f"{i:02}.png", (8, 8), (k, i, 0))
    splits = {p.file.name + p.labels[0]: p.split for p in store.parse_folder(root).images}
    counts = {(s, c): sum(1 for key, v in splits.items() if v == s and key.endswith(c))
              for s in ("train", "val", "test") for c in "ab"}
    assert counts == {("train", "a"): 16, ("val", "a"): 2, ("test", "a"): 2,
                      ("train", "b"): 24, ("val", "b"): 3, ("test", "b"): 3}
    write_image(root / "a" / "new.png", (8, 8), (9, 9, 9))
    again = {p.file.name + p.labels[0]: p.split for p in store.parse_folder(root).images}
    assert sum(again[key] != split for key, split in splits.items()) <= 2  # an added image moves few others
    other = {p.file.name + p.labels[0]: p.split for p in store.parse_folder(root, split_rule=SplitRule(seed=1)).images}
    assert other != splits
    with pytest.raises(ValueError, match="--test-fraction 1 is outside"):
        store.parse_folder(root, split_rule=SplitRule(test_fraction=1.0))


def test_single_label_plan_takes_the_class_from_the_boxes(voc: Path) -> None:
    from store.io.plan import to_single_label

    plan = store.parse_voc(voc)
    to_single_label(plan)
    assert plan.task == "single_label"
    assert plan.problems == ["JPEGImages/käse_001.jpg: its boxes carry 2 classes (hund, katze); a single-label "
                             "project needs one class per image: fix the boxes, or import without --task "
                             "single_label (multi-label)"]
    assert {p.file.name: p.labels for p in plan.images}["写真.jpg"] == ["hund"]
