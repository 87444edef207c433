"""Import report size and server memory against the CSV's length (issue 24 item 5); prints JSON.

    python bench/import_report.py [--rows 1000000] [--tree DIR]

Each case imports the same 10 small images from a server folder through the browser's route
(`services.zip_import.import_folder`, into a fresh SQLite data dir) in a process of its own, and reports the
process's peak RSS, the report's size in bytes (or the refusal's) and the wall time. The named baseline is the same
import with 10-row CSVs, measured in the same run:

- `baseline_10_rows`: groups.csv of 10 unknown files, boxes.csv of 10 off-image boxes;
- `groups_unknown`: groups.csv of `--rows` rows naming files the data set does not have (skipped);
- `boxes_off_image`: boxes.csv of `--rows` boxes outside their image (skipped);
- `boxes_unknown`: boxes.csv of `--rows` rows naming unknown files (problems: the import is refused).

`--tree DIR` runs the imports with the code of another checkout (e.g. `git archive HEAD | tar -x -C DIR`: the code
before a change), on the same data.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = ("baseline_10_rows", "groups_unknown", "boxes_off_image", "boxes_unknown")


def make_data_set(folder: Path) -> None:
    """10 PNGs of 64x48 in cat/ and dog/."""
    from PIL import Image

    for i in range(10):
        label = ("cat", "dog")[i % 2]
        path = folder / label / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (20 * i, 100, 200 - 10 * i)).save(path)


def write_csv(path: Path, header: str, row: str, rows: int) -> None:
    """`rows` rows of `row` formatted with their index, written in blocks (the file can hold a million)."""
    with open(path, "w", encoding="utf-8") as out:
        out.write(header + "\n")
        for start in range(0, rows, 100_000):
            out.write("".join(row.format(i=i) + "\n" for i in range(start, min(rows, start + 100_000))))


def prepare(case: str, root: Path, rows: int) -> Path:
    """The data dir of `case`, its data set in `imports/set/` with the case's CSVs."""
    data = root / case
    folder = data / "imports" / "set"
    make_data_set(folder)
    n = 10 if case == "baseline_10_rows" else rows
    if case in ("baseline_10_rows", "groups_unknown"):
        write_csv(folder / "groups.csv", "file,group", "missing/{i}.png,g", n)
    if case in ("baseline_10_rows", "boxes_off_image"):
        write_csv(folder / "boxes.csv", "file,label,x0,y0,x1,y1", "cat/000.png,cat,{i},1000,{i}1,1010", n)
    if case == "boxes_unknown":
        write_csv(folder / "boxes.csv", "file,label,x0,y0,x1,y1", "cat/x{i}.png,cat,1,1,5,5", n)
    return data


def child(data: Path, tree: Path | None) -> dict[str, object]:
    """Run one import in this process (with the code of `tree` when given): what it answered, and this process's
    peak memory."""
    if tree is not None:
        sys.path.insert(0, str(tree))
    from services.database import open_store
    from services.settings import Settings
    from services.zip_import import ImportOptions, import_folder

    settings = Settings(data_dir=data)
    engine = open_store(settings)
    start = time.perf_counter()
    try:
        done = import_folder(engine, settings, (data / "imports" / "set").resolve(), ImportOptions(), project="bench")
        skipped = getattr(done.result, "skipped_total", len(done.result.skipped))
        answer, outcome = "\n".join(done.report), f"imported, {skipped:,} skipped"
    except ValueError as exc:
        answer, outcome = str(exc), "refused"
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"outcome": outcome, "report_bytes": len(answer.encode("utf-8")), "report_lines": answer.count("\n") + 1,
            "seconds": round(seconds, 2), "peak_rss_mib": round(peak_kib / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tree", type=Path, default=None, help="run the imports with this checkout's code")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.tree)))
        return
    results: dict[str, object] = {"rows": args.rows, "code": str(args.tree or "this checkout")}
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            data = prepare(case, Path(tmp), args.rows)
            csv_mib = sum(p.stat().st_size for p in (data / "imports" / "set").glob("*.csv")) / 2**20
            tree = ["--tree", str(args.tree.resolve())] if args.tree else []
            out = subprocess.run([sys.executable, __file__, "--child", str(data), *tree], capture_output=True,
                                 text=True, check=True)
            results[case] = {"csv_mib": round(csv_mib, 1), **json.loads(out.stdout.strip().splitlines()[-1])}
    base = results["baseline_10_rows"]["peak_rss_mib"]  # type: ignore[index]
    for case in CASES[1:]:
        entry = results[case]
        entry["peak_rss_over_baseline_mib"] = round(entry["peak_rss_mib"] - base, 1)  # type: ignore[index]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
