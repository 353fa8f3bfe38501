"""The 3D view's server side (issue #27): time to build a scene's view from its files and its GLB, and the GLB's
size, for a synthetic scene and for one with a ScanNet-sized point cloud (300,000 points; cut to the budget).
The issue's target: a drawn scene within 1 s of the request and a payload under 10 MB; the browser's part is not
measured here yet (no app).

Usage: python benchmarks/app.py [--points 300000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import report
from vlm3r.datasets.layout import ProcessedLayout
from vlm3r.datasets.pointcloud import LabeledPoints, read_point_cloud, write_point_cloud
from vlm3r.datasets.synthetic.generate import SynthConfig, generate_dataset
from vlm3r.viz.scene3d import POINT_BUDGET, glb_bytes, scene_view

SECONDS_TARGET, MEGABYTES_TARGET = 1.0, 10.0  # the targets for a drawn scene and its payload


def timed_view(scene_dir: Path) -> dict:
    start = time.perf_counter()
    view = scene_view(scene_dir)
    built = time.perf_counter() - start
    data = glb_bytes(view)
    total = time.perf_counter() - start
    return {"points_sent": len(view.points), "boxes": len(view.boxes), "frames": len(view.camera_path),
            "view_s": built, "view_and_glb_s": total, "glb_mb": len(data) / 1e6,
            "within_targets": total < SECONDS_TARGET and len(data) / 1e6 < MEGABYTES_TARGET}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=300_000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "synthetic"
        generate_dataset(root, 1, 0, SynthConfig())
        layout = ProcessedLayout(root, "synthetic", "train")
        scene = layout.scene_names()[0]
        cloud = read_point_cloud(layout.point_cloud_path(scene))
        rows.append({"scene": f"synthetic ({len(cloud.xyz)} points)", **timed_view(root / scene)})
        rng = np.random.default_rng(0)
        big = rng.integers(0, len(cloud.xyz), args.points)  # a ScanNet-sized cloud over the same room
        jitter = rng.normal(0, 0.01, (args.points, 3))
        write_point_cloud(layout.point_cloud_path(scene), LabeledPoints(
            cloud.xyz[big] + jitter, cloud.rgb[big], cloud.label[big], cloud.instance_id[big]))
        rows.append({"scene": f"ScanNet-sized ({args.points} points, budget {POINT_BUDGET})",
                     **timed_view(root / scene)})
    report("app", rows, {"targets": {"seconds": SECONDS_TARGET, "megabytes": MEGABYTES_TARGET}})


if __name__ == "__main__":
    main()
