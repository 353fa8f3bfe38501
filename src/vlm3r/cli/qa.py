"""``vlm3r qa ...``: generate questions from scene metadata, inspect them, export them."""

from __future__ import annotations

from pathlib import Path

import typer

from vlm3r.cli.errors import check_output, guarded
from vlm3r.cli.options import Workers
from vlm3r.utils.progress import progress_bar
from vlm3r.viz.tables import output_console, qa_stats_summary, skip_table

app = typer.Typer(help="Questions: generate VSI-Bench / VSTI-Bench QA from scene metadata, inspect, export.",
                  no_args_is_help=True)


@app.command("generate")
@guarded
def generate(
    metadata: Path = typer.Option(..., "--metadata", help="Scene metadata file, metadata folder or dataset root."),
    out: Path = typer.Option(..., "--out", help="QA JSONL file to write."),
    bench: str = typer.Option("all", "--bench", help="vsibench, vstibench or all: the benchmark's tasks "
                                                     "(the short names vsi and vsti also work)."),
    tasks: str = typer.Option(None, "--tasks", help="Comma-separated task names (overrides --bench)."),
    per_scene: int = typer.Option(None, "--per-scene", min=1,
                                  help="Questions kept per scene and task (default: per task)."),
    seed: int = typer.Option(0, "--seed", help="Seed; the same seed gives an identical file."),
    workers: Workers = 1,
) -> None:
    """Generate questions for every scene and task; scenes or tasks that give none are reported with the reason.

    Example: vlm3r qa generate --metadata data/synthetic --bench all --out qa.jsonl
    """
    from vlm3r.qa.generate import generate as run
    from vlm3r.qa.generate import load_scenes, skip_summary, skipped_path, write_skips
    from vlm3r.qa.record import write_qa_jsonl
    from vlm3r.qa.tasks import select_tasks

    console = output_console()
    check_output(out)
    check_output(skipped_path(out))  # written beside it, under a longer name
    chosen = select_tasks(bench, [t.strip() for t in tasks.split(",")] if tasks else None)
    scenes = load_scenes(metadata)
    with progress_bar() as bar:
        task = bar.add_task("scenes", total=len(scenes))
        records, skips = run(scenes, chosen, seed=seed, per_scene=per_scene, workers=workers,
                             progress=lambda name: bar.update(task, advance=1, description=name))
    write_qa_jsonl(out, records)
    write_skips(skipped_path(out), skips)
    console.print(f"wrote {len(records)} questions from {len(scenes)} scenes to {out}")
    if skips:
        console.print(skip_table(skip_summary(skips), skipped_path(out)))


@app.command("stats")
@guarded
def stats(qa: Path = typer.Argument(..., help="QA JSONL file.")) -> None:
    """Questions per task, correct-letter shares and answer distributions.

    Example: vlm3r qa stats qa.jsonl
    """
    from vlm3r.qa.record import read_qa_jsonl
    from vlm3r.qa.stats import qa_stats

    console = output_console()
    for item in qa_stats_summary(qa_stats(read_qa_jsonl(qa))):
        console.print(item)


@app.command("export")
@guarded
def export(
    qa: Path = typer.Option(..., "--qa", help="QA JSONL file."),
    format: str = typer.Option(..., "--format", help="llava (training conversations) or parquet (benchmark)."),
    out: Path = typer.Option(..., "--out", help="File to write."),
    bench: str = typer.Option(None, "--bench", help="parquet only: vsibench or vstibench (or the short names vsi, "
                                                    "vsti), when the file mixes both."),
    video_root: str = typer.Option("", "--video-root", help="llava only: prefix for video paths."),
) -> None:
    """Export questions as LLaVA training conversations or as a benchmark parquet file.

    Example: vlm3r qa export --qa qa.jsonl --format llava --out train.json
    """
    from vlm3r.qa.export import record_bench, write_llava, write_parquet
    from vlm3r.qa.record import read_qa_jsonl

    console = output_console()
    if format not in ("llava", "parquet"):
        raise typer.BadParameter(f"unknown format {format!r}: llava or parquet", param_hint="--format")
    check_output(out)
    records = read_qa_jsonl(qa)
    if format == "llava":
        write_llava(out, records, video_root, str(qa))
        console.print(f"wrote {len(records)} conversations to {out}")
    else:
        written = write_parquet(out, records, bench, str(qa))
        console.print(f"wrote {sum(record_bench(r) == written for r in records)} {written} questions to {out}")
