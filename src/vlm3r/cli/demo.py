"""``vlm3r demo``: the README's main job on the embedded default data (synthetic scenes); ``vlm3r.eval.demo``
does the work."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from vlm3r.cli.errors import check_output, guarded
from vlm3r.datasets.synthetic.generate import SynthConfig
from vlm3r.eval.demo import run_demo
from vlm3r.eval.report import fmt
from vlm3r.utils.progress import progress_bar
from vlm3r.viz.tables import distance_table, output_console, scene_metadata_summary


@guarded
def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Folder for everything the demo writes."),
    num_scenes: int = typer.Option(3, "--num-scenes", help="Synthetic scenes to generate."),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic scenes."),
) -> None:
    """Generate synthetic scenes, build their metadata, draw the first one, measure its objects, generate
    VSI-Bench and VSTI-Bench questions, split by scene into training conversations (the first scenes) and
    benchmark files (the last third, held out), and score the chance baselines on the held-out scenes.

    Example: vlm3r demo --out demo_out --num-scenes 3
    """
    console = output_console()
    check_output(out, folder=True)
    config = SynthConfig()
    with progress_bar() as bar:
        task = bar.add_task("rendering", total=num_scenes * config.video_frames)
        result = run_demo(out, num_scenes, seed, config,
                          progress=lambda scene, n: bar.update(task, advance=n, description=scene))
    layout, records = result.layout, result.records
    layouts = [layout] + ([result.held_out_layout] if result.held_out_layout else [])
    for shown in layouts:
        for item in scene_metadata_summary(shown.scene_metadata_path, None, max_scenes=30):
            console.print(item)
    console.print(distance_table(result.scene))
    types = sorted({r.question_type for r in records})
    console.print(f"\n{len(records)} questions of {len(types)} types; examples:")
    for question_type in types[:: max(1, len(types) // 4)]:
        example = next(r for r in records if r.question_type == question_type)
        console.print(escape(f"  [{question_type}] {example.question}\n    answer: {example.ground_truth} "
                             f"({example.mc_answer})"))
    console.print(f"\n{result.split.note}")
    for run in result.baselines:
        random_overall = (fmt(run.random.overall) if run.random.overall is not None
                          else "- (no overall: a random number has no expected score on numeric tasks)")
        console.print(f"{run.benchmark.name}: frequency baseline {fmt(run.frequency.overall)}, random baseline "
                      f"{random_overall} ({run.frequency.n} questions)")
    vsi, vsti = result.parquet_paths
    train, tested = ", ".join(result.split.train), ", ".join(result.split.benchmark_scenes)
    console.print(f"\n[bold]written[/bold]\n  dataset:        {layout.root}\n"
                  f"  scene metadata: {', '.join(str(x.scene_metadata_path) for x in layouts)}\n"
                  f"  frame metadata: {', '.join(str(x.frame_metadata_path) for x in layouts)}\n"
                  f"  videos:         {', '.join(str(x.root / 'videos' / x.split) for x in layouts)}\n"
                  f"  overview:       {result.picture}\n"
                  f"  questions:      {result.qa_path} ({len(records)}, every scene's; {len(result.skips)} "
                  "scene/task pairs gave none)\n"
                  f"  training data:  {result.llava_path} ({result.conversations} conversations: {train})\n"
                  f"  benchmarks:     {vsi}, {vsti} ({result.baselines[0].frequency.n} and "
                  f"{result.baselines[1].frequency.n} questions: {tested})\n"
                  f"  reports:        {result.baselines[0].report}, {result.baselines[1].report}")
    console.print(f"\nlook at them in 3D: vlm3r app --data {layout.root} --qa {result.qa_path} (then open "
                  "http://127.0.0.1:7860)")
