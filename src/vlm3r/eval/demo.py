"""The demo (``vlm3r demo``): the README's main job on the embedded default data, from synthetic scenes to scores.

Synthetic scenes with their scene and frame metadata, an overview picture of the first scene, VSI-Bench and
VSTI-Bench questions with their training (LLaVA) and benchmark (parquet) exports, and the frequency and random
baselines of each benchmark scored and reported. ``run_demo`` writes it all and returns what the command prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vlm3r.datasets.layout import ProcessedLayout
from vlm3r.datasets.synthetic.generate import SynthConfig, generate_dataset
from vlm3r.eval.baselines import frequency_baseline, random_baseline
from vlm3r.eval.report import write_report, write_scores
from vlm3r.eval.scoring import ScoreReport
from vlm3r.qa.benchmarks import VSIBENCH, VSTIBENCH, Benchmark
from vlm3r.qa.export import write_llava, write_parquet
from vlm3r.qa.generate import Skip, generate, load_scenes
from vlm3r.qa.record import QARecord, write_qa_jsonl
from vlm3r.qa.tasks import select_tasks
from vlm3r.scene import SceneMeta, read_scene_metadata
from vlm3r.viz.scene_view import render_scene_overview


@dataclass(frozen=True)
class BaselineScores:
    """One benchmark's baselines on the demo's questions and the report that compares them."""

    benchmark: Benchmark
    frequency: ScoreReport
    random: ScoreReport
    report: Path


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote."""

    layout: ProcessedLayout  # the synthetic dataset
    scene: SceneMeta  # its first scene, drawn in ``picture``
    picture: Path
    records: list[QARecord]
    skips: list[Skip]  # (scene, task) pairs that gave no question
    qa_path: Path
    llava_path: Path
    parquet_paths: tuple[Path, Path]  # VSI-Bench, VSTI-Bench
    baselines: list[BaselineScores]


def run_demo(out: Path, num_scenes: int, seed: int, config: SynthConfig | None = None,
             progress: Callable[[str, int], None] | None = None) -> DemoResult:
    """Write the demo into ``out``: ``num_scenes`` synthetic scenes of ``seed`` (``progress`` as for
    ``generate_dataset``), the first one's overview, every task's questions (the same seed), their exports and
    the baselines' scores and reports (``out/eval/<benchmark>/``)."""
    layout = generate_dataset(out / "synthetic", num_scenes, seed, config or SynthConfig(), progress=progress)
    scene = next(iter(read_scene_metadata(layout.scene_metadata_path).scenes.values()))
    picture = out / f"{scene.scene_name}.png"
    render_scene_overview(layout, scene.scene_name, picture)
    records, skips = generate(load_scenes(layout.root), select_tasks("all"), seed=seed)
    qa_path, llava_path = out / "qa.jsonl", out / "train_llava.json"
    write_qa_jsonl(qa_path, records)
    write_llava(llava_path, records, video_root=str(layout.root))
    parquet_paths = (out / f"{VSIBENCH.name}.parquet", out / f"{VSTIBENCH.name}.parquet")
    for benchmark, path in zip((VSIBENCH, VSTIBENCH), parquet_paths):
        write_parquet(path, records, bench=benchmark.name)
    baselines = []
    for benchmark in (VSIBENCH, VSTIBENCH):
        frequency = frequency_baseline(benchmark, records)
        folder = out / "eval" / benchmark.name
        write_scores(folder, frequency, "frequency_scores.json")
        chance = random_baseline(benchmark, records)
        report = write_report(folder, frequency, {"random": chance},
                              f"{benchmark.name} on the demo scenes: frequency baseline", label="frequency")
        baselines.append(BaselineScores(benchmark, frequency, chance, report))
    return DemoResult(layout, scene, picture, records, skips, qa_path, llava_path, parquet_paths, baselines)
