"""``vlm3r demo``: the README's main job on the embedded default data (synthetic scenes)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from vlm3r.cli.errors import check_output, guarded
from vlm3r.cli.scenes import print_scene_metadata
from vlm3r.datasets.synthetic.generate import SynthConfig, generate_dataset
from vlm3r.eval.baselines import frequency_baseline, random_baseline
from vlm3r.eval.benchmarks import VSIBENCH, VSTIBENCH
from vlm3r.eval.report import fmt, write_report, write_scores
from vlm3r.qa.export import write_llava, write_parquet
from vlm3r.qa.generate import generate as generate_questions
from vlm3r.qa.generate import load_scenes
from vlm3r.qa.record import write_qa_jsonl
from vlm3r.qa.tasks import select_tasks
from vlm3r.scene import SceneMeta, read_scene_metadata
from vlm3r.utils.progress import progress_bar
from vlm3r.viz.scene_view import render_scene_overview


@guarded
def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Folder for everything the demo writes."),
    num_scenes: int = typer.Option(3, "--num-scenes", help="Synthetic scenes to generate."),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic scenes."),
) -> None:
    """Generate synthetic scenes, build their metadata, draw the first one, measure its objects, generate
    VSI-Bench and VSTI-Bench questions with training and benchmark exports, and score the chance baselines.

    Example: vlm3r demo --out demo_out --num-scenes 3
    """
    console = Console()
    check_output(out, folder=True)
    config = SynthConfig()
    with progress_bar() as bar:
        task = bar.add_task("rendering", total=num_scenes * config.video_frames)
        layout = generate_dataset(out / "synthetic", num_scenes, seed, config,
                                  progress=lambda scene, n: bar.update(task, advance=n, description=scene))
    print_scene_metadata(console, layout.scene_metadata_path, None, max_scenes=30)
    scene = next(iter(read_scene_metadata(layout.scene_metadata_path).scenes.values()))
    console.print(distance_table(scene))
    picture = out / f"{scene.scene_name}.png"
    render_scene_overview(layout, scene.scene_name, picture)
    records, skips = generate_questions(load_scenes(layout.root), select_tasks("all"), seed=seed)
    qa_path = out / "qa.jsonl"
    write_qa_jsonl(qa_path, records)
    write_llava(out / "train_llava.json", records, video_root=str(layout.root))
    for bench in ("vsi", "vsti"):
        write_parquet(out / f"{bench}bench.parquet", records, bench=bench)
    types = sorted({r.question_type for r in records})
    console.print(f"\n{len(records)} questions of {len(types)} types; examples:")
    for question_type in types[:: max(1, len(types) // 4)]:
        example = next(r for r in records if r.question_type == question_type)
        console.print(f"  [{question_type}] {example.question}\n    answer: {example.ground_truth} "
                      f"({example.mc_answer})")
    reports = []
    for benchmark in (VSIBENCH, VSTIBENCH):
        frequency = frequency_baseline(benchmark, records)
        folder = out / "eval" / benchmark.name
        write_scores(folder, frequency, "frequency_scores.json")
        chance = random_baseline(benchmark, records)
        reports.append(write_report(folder, frequency, {"random": chance},
                                    f"{benchmark.name} on the demo scenes: frequency baseline", label="frequency"))
        random_overall = (fmt(chance.overall) if chance.overall is not None
                          else "- (no overall: a random number has no expected score on numeric tasks)")
        console.print(f"{benchmark.name}: frequency baseline {fmt(frequency.overall)}, random baseline "
                      f"{random_overall} ({frequency.n} questions)")
    console.print(f"\n[bold]written[/bold]\n  dataset:        {layout.root}\n"
                  f"  scene metadata: {layout.scene_metadata_path}\n  frame metadata: {layout.frame_metadata_path}\n"
                  f"  videos:         {layout.root / 'videos' / layout.split}\n  overview:       {picture}\n"
                  f"  questions:      {qa_path} ({len(skips)} scene/task pairs gave none)\n"
                  f"  training data:  {out / 'train_llava.json'}\n"
                  f"  benchmarks:     {out / 'vsibench.parquet'}, {out / 'vstibench.parquet'}\n"
                  f"  reports:        {reports[0]}, {reports[1]}")


def distance_table(scene: SceneMeta) -> Table:
    """Exact closest distances between the scene's unique objects, nearest pairs first."""
    table = Table("object", "object", "closest distance (m)", title=f"{scene.scene_name}: unique objects")
    for a, b, distance in scene.unique_object_distances():
        table.add_row(a, b, f"{distance:.2f}")
    return table
