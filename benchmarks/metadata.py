"""``vlm3r scenes metadata`` throughput: scenes per minute with 1 and 2 worker processes.

On the synthetic dataset (scenes already in the processed layout: boxes, room area, frame metadata from 32
frames per scene) and on miniature ScanNet scans written in the raw formats by the tests' helpers (.sens
reading, mesh labelling, frame export, video encoding, then the same metadata build).
Usage: python benchmarks/metadata.py [--scenes 12]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core per worker

import argparse  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from _common import report  # noqa: E402
from vlm3r.datasets.metadata import build_dataset_metadata  # noqa: E402
from vlm3r.datasets.synthetic.generate import SynthConfig, generate_dataset  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_dataset_adapters import write_scannet_scene  # noqa: E402


def timed(dataset: str, root: Path, out: Path, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    result = build_dataset_metadata(dataset, root, out, "train", workers)
    if result.failures:
        raise RuntimeError(f"unexpected failures: {result.failures}")
    return time.perf_counter() - start, len(result.scenes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=12)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthetic = tmp / "synthetic"
        generate_dataset(synthetic, args.scenes, 0, SynthConfig(video_frames=48, video_size=(64, 48)))
        raw = tmp / "scannet"
        for k in range(args.scenes):
            write_scannet_scene(raw, f"scene{k:04d}_00", frames=120)
        for workers in (1, 2):
            seconds, n = timed("synthetic", synthetic, synthetic, workers)
            rows.append({"dataset": "synthetic (build only)", "workers": workers, "scenes": n, "seconds": seconds,
                         "scenes/min": 60 * n / seconds})
            out = tmp / f"scannet-out-{workers}"
            seconds, n = timed("scannet", raw, out, workers)
            rows.append({"dataset": "mini ScanNet (prepare + build, 120 frames)", "workers": workers, "scenes": n,
                         "seconds": seconds, "scenes/min": 60 * n / seconds})
            shutil.rmtree(out)
    report("metadata", rows, {"cpus": os.cpu_count()})


if __name__ == "__main__":
    main()
