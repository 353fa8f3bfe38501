"""``vlm3r serve`` under load: requests per second and p50 / p95 latency for 3 videos x 17 questions, with the
video caches cold (emptied first) and warm (every video encoded and prefilled already), with 1 and 4 concurrent
clients, on the tiny model (random weights, so every answer runs to max_tokens = 16). The server runs in this
process on a loopback port; the clients are httpx.
Usage: python benchmarks/serve.py [--videos 3] [--questions 17]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch
import uvicorn

from _common import report
from vlm3r.datasets.synthetic.generate import SynthConfig, generate_dataset
from vlm3r.eval.loading import group_by_video
from vlm3r.model.config import Vlm3rConfig
from vlm3r.model.loading import load_tokenizer
from vlm3r.model.modeling_vlm3r import Vlm3rModel
from vlm3r.model.pipeline import Vlm3rPipeline, VideoCaches
from vlm3r.model.prompt import bundled_tokenizer_dir
from vlm3r.qa.generate import generate, load_scenes
from vlm3r.qa.prompts import question_text
from vlm3r.qa.tasks import select_tasks
from vlm3r.serve.server import ServeOptions, build_app, uvicorn_config

CACHE_MB = 1024  # the server's --cache-mb: room for every video of the run


def workload(root: Path, videos: int, per_video: int) -> list[tuple[Path, str]]:
    records, _ = generate(load_scenes(root), select_tasks("all"), seed=0)
    groups = sorted(group_by_video(records, root), key=lambda g: g.video)[:videos]
    return [(g.video, question_text(q)) for g in groups for q in g.questions[:per_video]]


async def load(url: str, pairs: list[tuple[Path, str]], clients: int) -> list[float]:
    """Each request's latency, ``clients`` in flight at a time."""
    latencies = []
    gate = asyncio.Semaphore(clients)
    async with httpx.AsyncClient(timeout=600) as client:
        async def one(video: Path, question: str):
            content = [{"type": "video_url", "video_url": {"url": f"file://{video}"}},
                       {"type": "text", "text": question}]
            async with gate:
                start = time.perf_counter()
                response = await client.post(f"{url}/v1/chat/completions",
                                             json={"messages": [{"role": "user", "content": content}]})
                response.raise_for_status()
                latencies.append(time.perf_counter() - start)
        await asyncio.gather(*(one(v, q) for v, q in pairs))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--questions", type=int, default=17)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        generate_dataset(root, args.videos, 0, SynthConfig(num_frames=32, video_frames=240, frame_size=(64, 48),
                                                           video_size=(160, 120)))
        pairs = workload(root, args.videos, args.questions)  # a video's questions one after another
        torch.manual_seed(0)
        options = ServeOptions(video_roots=[root], cache_mb=CACHE_MB)
        pipeline = Vlm3rPipeline(Vlm3rModel(Vlm3rConfig.tiny()).eval(), load_tokenizer(bundled_tokenizer_dir()), 32,
                                 max_cache_bytes=options.cache_bytes)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        options = dataclasses.replace(options, port=port)
        app, engine, _ = build_app(pipeline, options, "tiny")
        server = uvicorn.Server(uvicorn_config(app, options))  # the settings vlm3r serve runs with
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        rows = []
        for clients in (1, 4):
            for cache in ("cold", "warm"):
                if cache == "cold":
                    pipeline.caches = VideoCaches(8, 2, options.cache_bytes)
                before = dict(engine.snapshot())
                start = time.perf_counter()
                latencies = asyncio.run(load(url, pairs, clients))
                seconds = time.perf_counter() - start
                after = engine.snapshot()
                rows.append({"clients": clients, "cache": cache, "requests": len(pairs), "seconds": seconds,
                             "requests_per_s": len(pairs) / seconds,
                             "p50_ms": 1000 * float(np.percentile(latencies, 50)),
                             "p95_ms": 1000 * float(np.percentile(latencies, 95)),
                             "encodings": after["encodings"] - before["encodings"],
                             "batches": after["batches"] - before["batches"]})
        server.should_exit = True
        thread.join(timeout=30)
    print(f"{args.videos} videos x {args.questions} questions, tiny model, 32 frames, {args.threads} threads")
    report("serve", rows, {"videos": args.videos, "questions_per_video": args.questions})


if __name__ == "__main__":
    main()
