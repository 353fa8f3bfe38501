"""``vlm3r eval ...``: score predictions on VSI-Bench / VSTI-Bench, chance baselines, reports."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from vlm3r.cli.errors import check_output, guarded
from vlm3r.utils.fileio import atomic_write_text

app = typer.Typer(help="Evaluation: score predictions, chance baselines, reports.", no_args_is_help=True)


def _print_report(console: Console, report, title: str) -> None:
    from vlm3r.eval.report import fmt

    table = Table("", "overall", *report.columns, title=title)
    table.add_row(report.benchmark, fmt(report.overall), *(fmt(v) for v in report.columns.values()))
    console.print(table)
    detail = Table("question type", "questions", "score")
    for question_type, count in report.counts.items():
        detail.add_row(question_type, str(count), fmt(report.per_question_type[question_type]))
    console.print(detail)
    if report.ignored_question_types:
        console.print(f"ignored (not in {report.benchmark}): {', '.join(report.ignored_question_types)}")


@app.command("score")
@guarded
def score_command(
    bench: str = typer.Option(..., "--bench", help="vsibench or vstibench."),
    qa: Path = typer.Option(..., "--qa", help="Questions: vlm3r .jsonl, reference .json or benchmark .parquet."),
    pred: Path = typer.Option(..., "--pred", help='Predictions .jsonl: {"id": ..., "prediction": "..."} per line.'),
    out: Path = typer.Option(None, "--out", help="Folder for scores.json, report.md and plots."),
) -> None:
    """Score model predictions exactly as the benchmark does and print the per-task table.

    Example: vlm3r eval score --bench vsibench --qa qa.jsonl --pred predictions.jsonl --out results/
    """
    from vlm3r.eval.baselines import frequency_baseline, random_baseline
    from vlm3r.eval.benchmarks import get_benchmark
    from vlm3r.eval.loading import load_predictions, load_questions
    from vlm3r.eval.report import write_report, write_scores
    from vlm3r.eval.scoring import score, split_questions
    from vlm3r.qa.record import QAFileError

    console = Console()
    check_output(out, folder=True)
    benchmark = get_benchmark(bench)
    questions = load_questions(qa)
    scored, others = split_questions(benchmark, questions)
    if not scored:
        raise QAFileError(f"{qa}: no {bench} questions in it")
    predictions = load_predictions(pred, scored, others)
    report = score(benchmark, questions, predictions)
    _print_report(console, report, f"{bench}: {pred.name}")
    if out is not None:
        write_scores(out, report)
        baselines = {"random": random_baseline(benchmark, questions),
                     "frequency": frequency_baseline(benchmark, questions)}
        path = write_report(out, report, baselines, f"{bench} results: {pred.name}")
        console.print(f"wrote {out / 'scores.json'} and {path}")


@app.command("baseline")
@guarded
def baseline_command(
    bench: str = typer.Option(..., "--bench", help="vsibench or vstibench."),
    qa: Path = typer.Option(..., "--qa", help="Questions (.jsonl, .json or .parquet)."),
    kind: str = typer.Option(..., "--kind", help="random or frequency."),
    out: Path = typer.Option(None, "--out", help="Folder for scores.json (and, for frequency, predictions.jsonl)."),
) -> None:
    """The paper's chance rows, computed from the question file.

    Example: vlm3r eval baseline --bench vstibench --qa qa.jsonl --kind frequency
    """
    from vlm3r.eval.baselines import frequency_baseline, frequency_predictions, random_baseline
    from vlm3r.eval.benchmarks import get_benchmark
    from vlm3r.eval.loading import load_questions
    from vlm3r.eval.report import write_scores
    from vlm3r.eval.scoring import benchmark_questions

    console = Console()
    if kind not in ("random", "frequency"):
        raise typer.BadParameter(f"unknown baseline {kind!r}: random or frequency", param_hint="--kind")
    check_output(out, folder=True)
    benchmark = get_benchmark(bench)
    questions = load_questions(qa)
    report = (random_baseline if kind == "random" else frequency_baseline)(benchmark, questions)
    _print_report(console, report, f"{bench}: chance level ({kind})")
    if out is not None:
        write_scores(out, report)
        if kind == "frequency":
            predictions = frequency_predictions(benchmark_questions(benchmark, questions)[0])
            atomic_write_text(out / "predictions.jsonl", "".join(
                json.dumps({"id": q, "prediction": p}) + "\n" for q, p in predictions.items()))
        console.print(f"wrote {out / 'scores.json'}")


@app.command("lmms-tasks")
@guarded
def lmms_tasks_command(
    qa: Path = typer.Option(..., "--qa", help="Questions (.jsonl, .json or .parquet)."),
    video_root: Path = typer.Option(..., "--video-root", help="Folder the questions' video paths are relative to."),
    out: Path = typer.Option(..., "--out", help="Folder to pass to lmms-eval as --include_path."),
    bench: str = typer.Option("vsibench", "--bench", help="vsibench or vstibench."),
) -> None:
    """Write an offline lmms-eval task for a local question file, to run VLM-3R inside lmms-eval.

    Example: vlm3r eval lmms-tasks --qa qa.jsonl --video-root data/synthetic --out lmms_tasks
    then: lmms-eval --model vlm3r --model_args pretrained=DIR,cut3r=FILE,base=DIR --tasks vlm3r_vsibench
    --include_path lmms_tasks
    """
    from vlm3r.eval.benchmarks import get_benchmark
    from vlm3r.eval.lmms.tasks import write_lmms_tasks
    from vlm3r.eval.loading import load_questions

    check_output(out, folder=True)
    task = write_lmms_tasks(out, get_benchmark(bench), load_questions(qa), video_root)
    Console().print(f"wrote task {task} to {out}; run lmms-eval with --tasks {task} --include_path {out}")
