"""Store benchmark: 100,000 images and 300,000 boxes on SQLite; prints JSON.

    python bench/store.py [--images 100000] [--boxes 300000] [--repeat 40]

Measures, each against a named baseline in the same run:
- one filtered, sorted gallery page of 48 (split=train, class, sort by EPG of an evaluation; goal p95 <= 50 ms)
  vs the same query after dropping the store's secondary indexes;
- saving one box as the editor does (`save_image_boxes` + commit; goal p95 <= 20 ms)
  vs the same save without the box-by-image index;
- a full COCO export (goal >= 50,000 boxes/s) vs a naive ORM per-image loop (measured on 2,000 images).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session

import store
from store.models import Box, BoxEvent, Image, ImageLabel
from store.models_runs import EvaluationImage

PAGE_INDEXES = ("ix_image_project_split_path", "ix_image_label_class", "ix_box_image_live", "ix_evaluation_image_epg",
                "ix_evaluation_image_score", "ix_evaluation_image_correct", "ix_evaluation_image_image")


def populate(engine: Engine, n_images: int, n_boxes: int, seed: int = 0) -> tuple[int, int]:
    """Bulk-load a project; returns (project id, evaluation id)."""
    rng = random.Random(seed)
    with store.session_scope(engine) as session:
        project = store.create_project(session, name="bench", classes=[f"class{i}" for i in range(10)])
        classes = [c.id for c in project.classes]
        images = [{"project_id": project.id, "path": f"images/{i:06d}.jpg", "sha256": f"{i:064x}", "width": 640,
                   "height": 480, "split": rng.choice(["train"] * 8 + ["val", "test"]), "group": f"g{i % 4}"}
                  for i in range(n_images)]
        session.execute(insert(Image), images)
        ids = list(session.scalars(select(Image.id).where(Image.project_id == project.id).order_by(Image.id)))
        session.execute(insert(ImageLabel), [{"image_id": i, "class_id": rng.choice(classes)} for i in ids])
        annotated = ids[: int(len(ids) * 0.6)]
        boxes = []
        for k in range(n_boxes):
            x0, y0 = rng.uniform(0, 500), rng.uniform(0, 400)
            boxes.append({"image_id": annotated[k % len(annotated)], "class_id": rng.choice(classes), "x0": x0,
                          "y0": y0, "x1": x0 + rng.uniform(5, 139), "y1": y0 + rng.uniform(5, 79),
                          "source": "imported", "author": "bench", "attributes": {}})
        for start in range(0, len(boxes), 50_000):
            session.execute(insert(Box), boxes[start:start + 50_000])
        ckpt = store.register_checkpoint(session, project_id=project.id, path="c.pt", sha256="c" * 64, arch="x")
        results = [store.EvaluationImageResult(i, rng.random() < 0.8, rng.random(), rng.random(), rng.random(),
                                               rng.randrange(10)) for i in ids]
        evaluation = store.record_evaluation(session, checkpoint_id=ckpt.id, split="all", metrics={}, results=results)
        return project.id, evaluation.id


def percentiles(samples: list[float], cpu: list[float]) -> dict[str, float]:
    """Wall-clock p50/p95 plus the CPU-time p50 of this process (the machine's cores are shared)."""
    def pick(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50_ms": pick(samples, 0.5), "p95_ms": pick(samples, 0.95), "cpu_p50_ms": pick(cpu, 0.5)}


def time_pages(engine: Engine, project_id: int, evaluation_id: int, repeat: int) -> dict[str, float]:
    rng, samples, cpu = random.Random(1), [], []
    with Session(engine) as session:
        for _ in range(repeat):
            start, cpu_start = time.perf_counter(), time.process_time()
            store.page_images(session, project_id, split="train", class_name="class3", sort_by="epg",
                              evaluation_id=evaluation_id, offset=48 * rng.randrange(20), limit=48)
            samples.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
    return percentiles(samples, cpu)


def time_saves(engine: Engine, image_ids: list[int], repeat: int) -> dict[str, float]:
    samples, cpu = [], []
    for k in range(repeat):
        image_id = image_ids[k % len(image_ids)]
        start, cpu_start = time.perf_counter(), time.process_time()
        with store.session_scope(engine) as session:
            boxes = store.list_boxes(session, image_id)
            drafts = [store.BoxDraft(b.label, b.x0, b.y0, b.x1, b.y1, id=b.id) for b in boxes]
            first = drafts[0]
            drafts[0] = store.BoxDraft(first.label, first.x0, first.y0, first.x1 - 1, first.y1, id=first.id)
            store.save_image_boxes(session, image_id, drafts, {b.id: b.revision for b in boxes}, "bench")
        samples.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return percentiles(samples, cpu)


def time_export(engine: Engine, out: Path) -> dict[str, float]:
    with store.session_scope(engine) as session:
        start, cpu_start = time.perf_counter(), time.process_time()
        summary = store.export_coco(session, store.get_project(session, "bench"), out)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {"boxes": summary.boxes, "seconds": round(seconds, 3), "boxes_per_s": round(summary.boxes / seconds),
            "cpu_seconds": round(cpu, 3)}


def time_naive_export(engine: Engine, n_images: int = 2000) -> dict[str, float]:
    """Baseline: the ORM loop a first version would write (one box query per image)."""
    with Session(engine) as session:
        start, boxes = time.perf_counter(), 0
        for image in session.scalars(select(Image).order_by(Image.id).limit(n_images)):
            for box in store.list_boxes(session, image.id):
                boxes += 1
                _ = {"image_id": image.id, "bbox": [box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0],
                     "category_id": box.klass.index + 1}
        seconds = time.perf_counter() - start
    return {"boxes": boxes, "seconds": round(seconds, 3), "boxes_per_s": round(boxes / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--boxes", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = store.open_database(f"sqlite:///{tmp}/bench.db")
        store.upgrade(engine)
        t0 = time.perf_counter()
        project_id, evaluation_id = populate(engine, args.images, args.boxes)
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
        with Session(engine) as session:
            box_images = list(session.scalars(select(Box.image_id).distinct().limit(200)))
        result: dict[str, object] = {"images": args.images, "boxes": args.boxes,
                                     "populate_s": round(time.perf_counter() - t0, 1)}
        page = time_pages(engine, project_id, evaluation_id, args.repeat)
        save = time_saves(engine, box_images, args.repeat)
        export = time_export(engine, Path(tmp) / "coco.json")
        naive = time_naive_export(engine)
        with engine.begin() as connection:
            for name in PAGE_INDEXES:
                connection.execute(text(f"DROP INDEX {name}"))
            connection.execute(text("ANALYZE"))
        page_base = time_pages(engine, project_id, evaluation_id, max(5, args.repeat // 4))
        save_base = time_saves(engine, box_images[100:], max(5, args.repeat // 4))
        result["page_48"] = {**page, "goal_p95_ms": 50, "baseline_no_indexes": page_base,
                             "speedup_p95": round(page_base["p95_ms"] / page["p95_ms"], 1)}
        result["save_box"] = {**save, "goal_p95_ms": 20, "baseline_no_box_image_index": save_base,
                              "speedup_p95": round(save_base["p95_ms"] / save["p95_ms"], 1)}
        result["coco_export"] = {**export, "goal_boxes_per_s": 50_000, "baseline_orm_per_image": naive,
                                 "speedup": round(export["boxes_per_s"] / naive["boxes_per_s"], 1)}
        result["box_events_written"] = Session(engine).scalar(select(BoxEvent.id).order_by(BoxEvent.id.desc()))
        engine.dispose()
    _ = EvaluationImage
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
