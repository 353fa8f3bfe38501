"""Sampling 32 frames from a long phone-style video: peak memory and seconds, before and after bounded decoding.

Generates a 1920x1080 H.264 video (default 3 minutes at 30 frames/s, kept under benchmarks/results/ for reruns),
then measures each reader in a fresh process (peak resident memory, wall seconds):
- ``after``: ``vlm3r.utils.video.read_video_frames`` (packets counted, only sampled frames converted and kept);
- ``before``: the earlier reader (every frame decoded to RGB and kept, then 32 picked). Its memory grows with
  the video (6.2 MB per 1080p frame: about 33 GB for 3 minutes, more than these machines have), so it is run on
  the video's first ``--before-seconds`` and its growth extrapolated linearly to the full length (marked).
Target (issue 13): peak under 500 MB for the full video.
Usage: python benchmarks/video.py [--seconds 180] [--fps 30] [--before-seconds 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from _common import RESULTS_DIR, report

WIDTH, HEIGHT = 1920, 1080
PEAK_TARGET_MB = 500.0

CHILD = r"""
import json, resource, sys, time
mode, path, frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "after":
    from vlm3r.utils.video import read_video_frames
    read = lambda: read_video_frames(path, frames)
else:
    import av, numpy as np
    def read():
        with av.open(path) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
        idx = np.linspace(0, len(decoded) - 1, frames, dtype=int)
        return np.stack([decoded[i] for i in idx])
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
read()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "baseline_mb": baseline}))
"""


def write_video(path: Path, seconds: float, fps: int) -> Path:
    """A moving pattern with texture (so H.264 has real work), encoded fast; written once, then reused."""
    import av

    if path.is_file():
        return path
    tmp = path.with_suffix(".partial.mp4")
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    ramp = np.linspace(0, 255, WIDTH, dtype=np.float32)[None, :, None]
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "28"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(int(seconds * fps)):
            shift = (i * 7) % WIDTH
            frame = (np.roll(texture, shift, axis=1) // 2 + (np.roll(ramp, shift, axis=1) // 2)).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    tmp.rename(path)
    return path


def measure(mode: str, path: Path, frames: int) -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), str(frames)], capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--before-seconds", type=float, default=20.0)
    args = parser.parse_args()
    cache = RESULTS_DIR / "video_cache"
    cache.mkdir(parents=True, exist_ok=True)
    full = write_video(cache / f"phone_{WIDTH}x{HEIGHT}_{args.seconds:g}s_{args.fps}fps.mp4", args.seconds, args.fps)
    short = write_video(cache / f"phone_{WIDTH}x{HEIGHT}_{args.before_seconds:g}s_{args.fps}fps.mp4",
                        args.before_seconds, args.fps)
    after = measure("after", full, args.frames)
    before_short = measure("before", short, args.frames)
    after_short = measure("after", short, args.frames)
    scale = args.seconds / args.before_seconds
    grown = before_short["peak_mb"] - before_short["baseline_mb"]
    rows = [
        {"reader": "after", "video_s": args.seconds, "seconds": after["seconds"], "peak_mb": after["peak_mb"],
         "measured": "yes"},
        {"reader": "after", "video_s": args.before_seconds, "seconds": after_short["seconds"],
         "peak_mb": after_short["peak_mb"], "measured": "yes"},
        {"reader": "before", "video_s": args.before_seconds, "seconds": before_short["seconds"],
         "peak_mb": before_short["peak_mb"], "measured": "yes"},
        {"reader": "before", "video_s": args.seconds, "seconds": before_short["seconds"] * scale,
         "peak_mb": before_short["baseline_mb"] + grown * scale, "measured": "extrapolated"},
    ]
    print(f"{WIDTH}x{HEIGHT}, {args.fps} frames/s, {args.frames} frames sampled; target: peak under "
          f"{PEAK_TARGET_MB:.0f} MB for the {args.seconds:g} s video: "
          f"{'met' if after['peak_mb'] < PEAK_TARGET_MB else 'NOT met'} ({after['peak_mb']:.0f} MB)")
    report("video", rows, {"width": WIDTH, "height": HEIGHT, "fps": args.fps, "frames": args.frames,
                           "peak_target_mb": PEAK_TARGET_MB})


if __name__ == "__main__":
    main()
