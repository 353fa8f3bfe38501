"""CUT3R speed and memory: per-frame time of the token path (what VLM-3R needs) and of the full path (tokens +
heads) at 432x432, full cut3r_512_dpt_4_64 architecture with random weights.

CPU (default): fp32, 2 threads. With --device cuda: bf16, 32 frames (peak GPU memory too).
Target (issue 6): token path at least 1.3x faster than the full path on CPU.
Usage: python benchmarks/cut3r.py [--frames 2] [--device cpu|cuda] [--dtype fp32|bf16]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from _common import report
from vlm3r.model.cut3r import Cut3r, Cut3rConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    frames = args.frames or (32 if cuda else 2)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype or
                                                                                     ("bf16" if cuda else "fp32")]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Cut3r(Cut3rConfig.full()).requires_grad_(False).to(device=args.device, dtype=dtype).eval()  # frozen
    video = (torch.rand(frames, 3, 432, 432, device=args.device) * 2 - 1).to(dtype)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    model.encode_video(video[:1])  # warm-up
    rows = []
    for name, run in (("tokens (encode_video)", lambda: model.encode_video(video)),
                      ("full (reconstruct: tokens + heads)", lambda: model.reconstruct(video))):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        sync()
        start = time.perf_counter()
        run()
        sync()
        seconds = time.perf_counter() - start
        row = {"path": name, "frames": frames, "device": args.device, "dtype": str(dtype).replace("torch.", ""),
               "seconds_per_frame": seconds / frames}
        if cuda:
            row["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
        rows.append(row)
    speedup = rows[1]["seconds_per_frame"] / rows[0]["seconds_per_frame"]
    peak_rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {params:,}; token path speed-up over full path: {speedup:.2f}x (target >= 1.3x on CPU); "
          f"peak process memory {peak_rss_gib:.2f} GiB")
    report(f"cut3r_{args.device.split(':')[0]}", rows, {"speedup": speedup, "peak_rss_gib": peak_rss_gib,
                                                       "parameters": params, "threads": args.threads})


if __name__ == "__main__":
    main()
