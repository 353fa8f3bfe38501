"""Synthetic scenes: statistics over N scenes and per-scene generation time on one core.

Target (issue 3): 32 frames at 640x480 plus a 240-frame video at 320x240 in under 5 s per scene on one core.
Usage: python benchmarks/synth.py [--scenes 20] [--seed 0]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, as the target says

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from _common import report  # noqa: E402
from vlm3r.datasets.layout import ProcessedLayout  # noqa: E402
from vlm3r.datasets.synthetic.categories import SyntheticVocabulary  # noqa: E402
from vlm3r.datasets.synthetic.generate import DATASET, SynthConfig, design_scene, write_metadata, write_scene  # noqa: E402
from vlm3r.datasets.synthetic.render import Renderer, scene_geometry  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config, vocabulary = SynthConfig(), SyntheticVocabulary.load()
    rows, areas, counts, unique_shares, fps_full, fps_video = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        layout = ProcessedLayout(Path(tmp), DATASET, config.split)
        for index in range(args.scenes):
            start = time.perf_counter()
            scene = design_scene(args.seed, index, config, vocabulary)
            designed = time.perf_counter()
            write_scene(layout, scene, config)
            written = time.perf_counter()
            categories = [o.category for o in scene.furnished.objects]
            areas.append(scene.furnished.room.area)
            counts.append(len(categories))
            unique_shares.append(sum(categories.count(c) == 1 for c in set(categories)) / len(set(categories)))
            geometry = scene_geometry(scene.furnished, scene.instance_colors, scene.structure_colors)
            for size, sink in ((config.frame_size, fps_full), (config.video_size, fps_video)):
                renderer = Renderer(geometry, config.intrinsics(size), *size)
                poses = scene.trajectory.poses[::24]
                t0 = time.perf_counter()
                for pose in poses:
                    renderer.render(pose)
                sink.append(len(poses) / (time.perf_counter() - t0))
            rows.append({"scene": scene.name, "room_type": scene.furnished.room_type,
                         "area_m2": round(scene.furnished.room.area, 1), "objects": len(categories),
                         "design_s": designed - start, "write_s": written - designed, "total_s": written - start})
            print(f"{scene.name}: {rows[-1]['total_s']:.2f} s")
        start = time.perf_counter()
        write_metadata(layout)
        metadata_s = time.perf_counter() - start
    totals = np.array([r["total_s"] for r in rows])
    summary = {
        "scenes": args.scenes,
        "seconds_per_scene_mean": float(totals.mean()), "seconds_per_scene_max": float(totals.max()),
        "target_seconds_per_scene": 5.0,
        "metadata_seconds_per_scene": metadata_s / args.scenes,
        "room_area_m2_min_mean_max": [float(min(areas)), float(np.mean(areas)), float(max(areas))],
        "objects_per_scene_min_mean_max": [int(min(counts)), float(np.mean(counts)), int(max(counts))],
        "unique_category_share_mean": float(np.mean(unique_shares)),
        "render_fps_640x480": float(np.mean(fps_full)), "render_fps_320x240": float(np.mean(fps_video)),
    }
    for key, value in summary.items():
        print(f"{key}: {value}")
    report("synth", rows, {"summary": summary})


if __name__ == "__main__":
    main()
