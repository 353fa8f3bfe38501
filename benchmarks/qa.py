"""Question generation speed: questions per second per task, and seconds per scene for all tasks, on one core;
then time and peak memory of ``vlm3r qa generate`` on one scene holding many boxes of one category.

Target (issue 4): all tasks for one scene in under 1 s on one core. Scenes are synthetic, with the default
32 of 240 frames (rendered tiny: only metadata matters here). Issue 22: time and memory linear in one category's
box count (the all-pairs distance matrix took 54 s and 834 MB at 2,000 boxes of one category here, and 22 GB at
20,000); each run is a process of its own, its peak resident memory read from ``ru_maxrss``.
Usage: python benchmarks/qa.py [--scenes 20] [--one-category 2000,20000]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from _common import report  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from vlm3r.datasets.synthetic.generate import SynthConfig, generate_dataset  # noqa: E402
from vlm3r.datasets.synthetic.crowd import crowd_scene  # noqa: E402
from vlm3r.qa.generate import generate, load_scenes  # noqa: E402
from vlm3r.qa.tasks import select_tasks  # noqa: E402

CONFIG = SynthConfig(num_frames=32, video_frames=240, frame_size=(64, 48), video_size=(32, 24))
CATEGORY = "cup"  # the category added many times
MEASURED = """
import resource, sys, time
from vlm3r.cli.main import app
start = time.perf_counter()
try:
    app(sys.argv[1:], prog_name="vlm3r")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}), file=sys.stderr)
sys.exit(code)
""".replace("import resource,", "import json, resource,")


def measure_generate(metadata: Path, out: Path) -> dict:
    """Seconds of the ``qa generate`` command (after its imports) and its process's peak resident memory."""
    result = subprocess.run([sys.executable, "-c", MEASURED, "qa", "generate", "--metadata", str(metadata), "--out",
                             str(out)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    measured = json.loads(result.stderr.strip().splitlines()[-1])
    return {**measured, "questions": sum(1 for _ in out.open())}


def one_category_rows(root: Path, counts: list[int], tmp: Path) -> list[dict]:
    base = measure_generate(crowd_scene(root, tmp / "boxes0", CATEGORY, 0).parent, tmp / "boxes0.jsonl")
    rows = []
    for count in counts:
        metadata = crowd_scene(root, tmp / f"boxes{count}", CATEGORY, count)
        run = measure_generate(metadata.parent, tmp / f"boxes{count}.jsonl")
        rows.append({"boxes of one category": count, "metadata MB": metadata.stat().st_size / 1e6,
                     "questions": run["questions"], "seconds": run["seconds"],
                     "peak MB": run["peak_bytes"] / 1e6,
                     "peak above 0 boxes MB": (run["peak_bytes"] - base["peak_bytes"]) / 1e6,
                     "bytes per box": (run["peak_bytes"] - base["peak_bytes"]) / count})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenes", type=int, default=20)
    parser.add_argument("--one-category", default="2000,20000",
                        help="Box counts of one category to time qa generate on (comma-separated; empty: none).")
    args = parser.parse_args()
    counts = [int(x) for x in args.one_category.split(",") if x.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(tmp, args.scenes, 0, CONFIG)
        scenes = load_scenes(tmp)
        one_category = one_category_rows(Path(tmp), counts, Path(tmp)) if counts else []
    rows, total_seconds = [], 0.0
    for task in select_tasks("all"):
        start = time.perf_counter()
        records, _ = generate(scenes, [task], seed=0, per_scene=None if task.default_per_scene is None else 10**6)
        seconds = time.perf_counter() - start
        total_seconds += seconds
        rows.append({"task": task.name, "questions": len(records), "seconds": seconds,
                     "questions_per_second": len(records) / seconds if seconds else 0.0,
                     "ms_per_scene": 1000 * seconds / len(scenes)})
    start = time.perf_counter()
    records, _ = generate(scenes, select_tasks("all"), seed=0)
    default_seconds = time.perf_counter() - start
    summary = {"scenes": len(scenes), "seconds_per_scene_all_tasks_unlimited": total_seconds / len(scenes),
               "seconds_per_scene_all_tasks_default_limits": default_seconds / len(scenes),
               "questions_default_limits": len(records), "target_seconds_per_scene": 1.0}
    for key, value in summary.items():
        print(f"{key}: {value}")
    if one_category:
        table = Table(*one_category[0], title="qa generate, one scene, many boxes of one category")
        for row in one_category:
            table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
        Console().print(table)
    report("qa", rows, {"summary": summary, "one_category": one_category})


if __name__ == "__main__":
    main()
