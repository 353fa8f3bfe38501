"""Questions per second of a benchmark run, three ways, on the tiny model and synthetic videos (6 videos x 17
questions by default):

(a) every question from scratch, as lmms-eval's loop does it: decode, SigLIP + CUT3R, prefill the whole prompt;
(b) with the per-video embedding cache: each video encoded once, every prompt still prefilled whole;
(c) cache + prefix prefill (``vlm3r eval run``): each video encoded and its prompt prefix prefilled once, its
    questions then answered ``--batch-size`` at a time (default: all of a video's questions in one batch);
(c1) the same one question at a time (``--batch-size 1``).

The answers must be the same in all. Target (issue 15): (c) at least 10x (a). The tiny model is random, so it
never stops before max_new_tokens (16): its decoding steps, not the prefill, dominate (c1).
Usage: python benchmarks/eval_run.py [--videos 6] [--questions 17] [--frames 32] [--batch-size 17]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from _common import report
from vlm3r.datasets.synthetic.generate import SynthConfig, generate_dataset
from vlm3r.eval.loading import group_by_video
from vlm3r.model.config import Vlm3rConfig
from vlm3r.model.loading import load_tokenizer
from vlm3r.model.modeling_vlm3r import Vlm3rModel
from vlm3r.model.pipeline import Vlm3rPipeline
from vlm3r.model.prompt import bundled_tokenizer_dir
from vlm3r.qa.generate import generate, load_scenes
from vlm3r.qa.prompts import question_text
from vlm3r.qa.tasks import select_tasks

SPEED_UP_TARGET = 10.0


def questions_per_video(root: Path, videos: int, per_video: int) -> list[tuple[Path, list[str]]]:
    records, _ = generate(load_scenes(root), select_tasks("all"), seed=0)
    groups = sorted(group_by_video(records, root), key=lambda g: g.video)[:videos]
    chosen = [(g.video, [question_text(q) for q in g.questions[:per_video]]) for g in groups]
    short = [str(v) for v, texts in chosen if len(texts) < per_video]
    if short or len(chosen) < videos:
        raise SystemExit(f"not enough questions: {videos} videos with {per_video} each wanted ({short})")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--questions", type=int, default=17)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=None, help="default: --questions")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per mode; the best counts")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch = args.batch_size or args.questions
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        generate_dataset(root, args.videos, 0, SynthConfig(num_frames=32, video_frames=240, frame_size=(64, 48),
                                                           video_size=(160, 120)))
        work = questions_per_video(root, args.videos, args.questions)
        torch.manual_seed(0)
        model = Vlm3rModel(Vlm3rConfig.tiny()).eval()
        tokenizer = load_tokenizer(bundled_tokenizer_dir())
        total = sum(len(texts) for _, texts in work)
        modes = {  # each: (pipeline caches, how a video's questions are answered)
            "(a) from scratch": (dict(cache_size=0, prefix_cache_size=0),
                                 lambda p, video, texts: [p.ask(video, t) for t in texts]),
            "(b) embedding cache": ({}, lambda p, video, texts: [p.ask(video, t) for t in texts]),
            "(c) cache + prefix prefill": ({}, lambda p, video, texts: p.ask_video(video, texts, batch_size=batch)),
            "(c1) cache + prefix, batch 1": ({}, lambda p, video, texts: p.ask_video(video, texts)),
        }
        rows, answers = [], {}
        for name, (caches, answer) in modes.items():
            best = None
            for _ in range(args.repeats):  # best of a few, each with empty caches: this machine is noisy
                pipeline = Vlm3rPipeline(model, tokenizer, args.frames, **caches)
                start = time.perf_counter()
                answers[name] = [a for video, texts in work for a in answer(pipeline, video, texts)]
                seconds = time.perf_counter() - start
                best = seconds if best is None else min(best, seconds)
            rows.append({"mode": name, "questions": total, "seconds": best, "questions_per_s": total / best,
                         "encodings": pipeline.encodings})
    same = len({tuple(a) for a in answers.values()}) == 1
    base = rows[0]["questions_per_s"]
    for row in rows:
        row["speed_up"] = row["questions_per_s"] / base
    print(f"{args.videos} videos x {args.questions} questions, tiny model, {args.frames} frames, {args.threads} "
          f"threads; same answers in all modes: {same}; (c) / (a) = {rows[2]['speed_up']:.1f}x "
          f"(target >= {SPEED_UP_TARGET:g}x: {'met' if rows[2]['speed_up'] >= SPEED_UP_TARGET else 'NOT met'}); "
          f"(c) / (b) = {rows[2]['questions_per_s'] / rows[1]['questions_per_s']:.2f}x; (c1) / (a) = "
          f"{rows[3]['speed_up']:.1f}x (batch {batch} for (c))")
    report("eval_run", rows, {"same_answers": same, "frames": args.frames, "videos": args.videos,
                              "questions_per_video": args.questions, "batch_size": batch, "repeats": args.repeats})


if __name__ == "__main__":
    main()
