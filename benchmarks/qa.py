"""Question generation speed: questions per second per task, and seconds per scene for all tasks, on one core.

Target (issue 4): all tasks for one scene in under 1 s on one core. Scenes are synthetic, with the default
32 of 240 frames (rendered tiny: only metadata matters here).
Usage: python benchmarks/qa.py [--scenes 20]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from _common import report  # noqa: E402
from vlm3r.datasets.synthetic.generate import SynthConfig, generate_dataset  # noqa: E402
from vlm3r.qa.generate import generate, load_scenes  # noqa: E402
from vlm3r.qa.tasks import select_tasks  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenes", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = SynthConfig(num_frames=32, video_frames=240, frame_size=(64, 48), video_size=(32, 24))
        generate_dataset(tmp, args.scenes, 0, config)
        scenes = load_scenes(tmp)
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
    report("qa", rows, {"summary": summary})


if __name__ == "__main__":
    main()
