"""The demo (``vlm3r demo``): the README's main job on the embedded default data, from synthetic scenes to scores.

Synthetic scenes with their scene and frame metadata, an overview picture of the first scene, VSI-Bench and
VSTI-Bench questions of every scene, split by scene into training conversations (LLaVA; the first scenes) and
benchmark files (parquet; the held-out last scenes), and the frequency and random baselines of each benchmark on
the held-out scenes, scored and reported. ``run_demo`` writes it all and returns what the command prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from vlm3r.datasets.layout import ProcessedLayout
from vlm3r.datasets.synthetic.generate import SynthConfig, generate_dataset, scene_name
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


#: The demo's split by scene: its first scenes are written under the layout's ``TRAIN_SPLIT`` (videos/train/...)
#: and give the training conversations; its last ``HELD_OUT_SHARE`` (at least one, rounded) are written under
#: ``HELD_OUT_SPLIT`` (videos/val/...) and give the benchmark files and the baselines, so that a model trained on
#: the one is evaluated on scenes it has not seen. One scene cannot be split: it gives both, and the demo says so.
TRAIN_SPLIT, HELD_OUT_SPLIT = "train", "val"
HELD_OUT_SHARE = 1 / 3


def held_out_count(num_scenes: int) -> int:
    """How many of ``num_scenes`` demo scenes (the last ones) are held out: a share ``HELD_OUT_SHARE``, at least
    one and leaving at least one for training; none when there is a single scene."""
    if num_scenes < 2:
        return 0
    return min(num_scenes - 1, max(1, round(num_scenes * HELD_OUT_SHARE)))


@dataclass(frozen=True)
class DemoSplit:
    """Which scenes give the training conversations and which the benchmark files, and the sentence that
    says so (printed by the demo and written in its reports)."""

    train: list[str]
    held_out: list[str]  # empty: a single scene, not split

    @property
    def benchmark_scenes(self) -> list[str]:
        return self.held_out or self.train

    @property
    def note(self) -> str:
        if not self.held_out:
            return (f"Not split by scene: the demo has one scene ({', '.join(self.train)}), so the training "
                    "conversations and the benchmark files come from the same scene and the same questions; a "
                    "model trained on the one and scored on the other is scored on what it was trained on (give "
                    "--num-scenes 2 or more to hold scenes out).")
        return (f"Split by scene: training conversations from {', '.join(self.train)} (videos/{TRAIN_SPLIT}); "
                f"benchmark files and baselines from {', '.join(self.held_out)} (videos/{HELD_OUT_SPLIT}), "
                "held out of the training data.")


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote."""

    layout: ProcessedLayout  # the synthetic dataset's training scenes
    held_out_layout: ProcessedLayout | None  # its held-out scenes (None: a single scene, not split)
    split: DemoSplit
    scene: SceneMeta  # its first scene, drawn in ``picture``
    picture: Path
    records: list[QARecord]  # every scene's questions (qa.jsonl)
    skips: list[Skip]  # (scene, task) pairs that gave no question
    qa_path: Path
    llava_path: Path
    conversations: int  # in ``llava_path``: the training scenes' questions
    parquet_paths: tuple[Path, Path]  # VSI-Bench, VSTI-Bench: the held-out scenes' questions
    baselines: list[BaselineScores]


def run_demo(out: Path, num_scenes: int, seed: int, config: SynthConfig | None = None,
             progress: Callable[[str, int], None] | None = None) -> DemoResult:
    """Write the demo into ``out``: ``num_scenes`` synthetic scenes of ``seed`` (``progress`` as for
    ``generate_dataset``), split by scene (``held_out_count``), the first one's overview, every task's questions
    of every scene (the same seed), the training conversations of the training scenes, the benchmark files of
    the held-out ones, and the baselines' scores and reports on those (``out/eval/<benchmark>/``)."""
    config = config or SynthConfig()
    held = held_out_count(num_scenes)
    layout = generate_dataset(out / "synthetic", num_scenes - held, seed, replace(config, split=TRAIN_SPLIT),
                              progress=progress)
    held_out_layout = None
    if held:
        held_out_layout = generate_dataset(out / "synthetic", held, seed, replace(config, split=HELD_OUT_SPLIT),
                                           progress=progress, first=num_scenes - held)
    split = DemoSplit([scene_name(seed, i) for i in range(num_scenes - held)],
                      [scene_name(seed, i) for i in range(num_scenes - held, num_scenes)])
    scene = read_scene_metadata(layout.scene_metadata_path).scenes[split.train[0]]
    picture = out / f"{scene.scene_name}.png"
    render_scene_overview(layout, scene.scene_name, picture)
    records, skips = generate(load_scenes(layout.root), select_tasks("all"), seed=seed)
    qa_path, llava_path = out / "qa.jsonl", out / "train_llava.json"
    write_qa_jsonl(qa_path, records)
    training = [r for r in records if r.scene_name in set(split.train)]
    write_llava(llava_path, training, video_root=str(layout.root))
    testing = [r for r in records if r.scene_name in set(split.benchmark_scenes)]
    parquet_paths = (out / f"{VSIBENCH.name}.parquet", out / f"{VSTIBENCH.name}.parquet")
    for benchmark, path in zip((VSIBENCH, VSTIBENCH), parquet_paths):
        write_parquet(path, testing, bench=benchmark.name)
    baselines = []
    for benchmark in (VSIBENCH, VSTIBENCH):
        frequency = frequency_baseline(benchmark, testing)
        folder = out / "eval" / benchmark.name
        write_scores(folder, frequency, "frequency_scores.json")
        chance = random_baseline(benchmark, testing)
        report = write_report(folder, frequency, {"random": chance},
                              f"{benchmark.name} on the demo scenes: frequency baseline", label="frequency",
                              note=split.note)
        baselines.append(BaselineScores(benchmark, frequency, chance, report))
    return DemoResult(layout, held_out_layout, split, scene, picture, records, skips, qa_path, llava_path,
                      len(training), parquet_paths, baselines)
