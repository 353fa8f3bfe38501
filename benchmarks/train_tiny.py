"""The tiny recipe end to end on synthetic scenes (CPU): train with and without the spatial tokens, score a
held-out split next to the chance baselines, plot the loss curves.

Training scenes and held-out scenes are generated with different seeds; questions of every VSI-Bench and
VSTI-Bench task are generated for both; the tiny model is trained on (a sample of) the training questions and
answers the held-out ones with greedy decoding, as the benchmarks run. The tiny model is a 2-layer, 48-wide
random LLM: this measures that the whole loop works and what such a model learns, not VLM-3R's accuracy.
Usage: python benchmarks/train_tiny.py [--train-scenes 8] [--test-scenes 3] [--train-questions 300]
       [--epochs 2] [--test-questions 200]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from _common import RESULTS_DIR, report
from vlm3r.datasets.synthetic.generate import SynthConfig, generate_dataset
from vlm3r.eval.baselines import frequency_baseline, random_baseline
from vlm3r.eval.scoring import score
from vlm3r.model.pipeline import Vlm3rPipeline
from vlm3r.qa.benchmarks import VSIBENCH, VSTIBENCH
from vlm3r.qa.export import write_llava
from vlm3r.qa.generate import generate, load_scenes
from vlm3r.qa.prompts import question_text
from vlm3r.qa.tasks import select_tasks
from vlm3r.training.config import load_train_config
from vlm3r.training.trainer import train

SCENES = SynthConfig(num_frames=32, video_frames=240, frame_size=(96, 72), video_size=(96, 72))


def questions_for(root: Path, count: int, seed: int, picker: random.Random) -> list:
    records, _ = generate(load_scenes(root), select_tasks("all"), seed=seed)
    return picker.sample(records, min(count, len(records)))


def predict(run: Path, records: list, video_root: Path, frames: int) -> dict[str, str]:
    pipeline = Vlm3rPipeline.from_pretrained(run, num_frames=frames)
    predictions = {}
    for start in range(0, len(records), 8):
        batch = records[start:start + 8]
        answers = pipeline.ask_many([video_root / r.video_path for r in batch], [question_text(r) for r in batch])
        predictions.update({str(r.id): a for r, a in zip(batch, answers)})
    return predictions


def plot(curves: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, history in curves.items():
        ax.plot([h["step"] for h in history], [h["loss"] for h in history], lw=1, label=name)
    ax.set(xlabel="optimizer step", ylabel="train loss (log)", yscale="log", title="tiny VLM-3R on synthetic scenes")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-scenes", type=int, default=8)
    parser.add_argument("--test-scenes", type=int, default=3)
    parser.add_argument("--train-questions", type=int, default=300)
    parser.add_argument("--test-questions", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    picker = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        generate_dataset(tmp / "train", args.train_scenes, 100, SCENES)
        generate_dataset(tmp / "test", args.test_scenes, 200, SCENES)
        train_records = questions_for(tmp / "train", args.train_questions, 1, picker)
        test_records = questions_for(tmp / "test", args.test_questions, 2, picker)
        write_llava(tmp / "train.json", train_records, video_root=str(tmp / "train"))
        data_seconds = time.perf_counter() - start
        rows, curves = [], {}
        for name, fusion in (("with spatial tokens", True), ("without (LLaVA-Video layout)", False)):
            cfg = load_train_config("tiny", [f"data.train={tmp / 'train.json'}", f"run.output_dir={tmp / name}",
                                             f"optim.epochs={args.epochs}", f"model.fusion={str(fusion).lower()}",
                                             "data.add_time_instruction=false", "run.save_every=100000"])
            start = time.perf_counter()
            run = train(cfg)
            seconds = time.perf_counter() - start
            history = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
            curves[name] = history
            predictions = predict(run, test_records, tmp / "test", cfg.data.num_frames)
            for bench in (VSIBENCH, VSTIBENCH):
                result = score(bench, test_records, predictions)
                rows.append({"model": f"tiny, {name}", "benchmark": bench.name, "overall": result.overall,
                             "n": result.n, "first loss": history[0]["loss"],
                             "last loss": sum(h["loss"] for h in history[-20:]) / min(20, len(history)),
                             "train s": seconds})
        for bench in (VSIBENCH, VSTIBENCH):
            for name, baseline in (("chance: random", random_baseline), ("chance: frequency", frequency_baseline)):
                result = baseline(bench, test_records)
                rows.append({"model": name, "benchmark": bench.name, "overall": result.overall, "n": result.n,
                             "first loss": None, "last loss": None, "train s": None})
    RESULTS_DIR.mkdir(exist_ok=True)
    plot(curves, RESULTS_DIR / "train_tiny_loss.png")
    report("train_tiny", rows, {"args": vars(args), "train_questions": len(train_records),
                                "test_questions": len(test_records), "data_seconds": data_seconds,
                                "loss_png": str(RESULTS_DIR / "train_tiny_loss.png")})


if __name__ == "__main__":
    main()
