"""``vlm3r eval ...``: score predictions on VSI-Bench / VSTI-Bench, chance baselines, reports."""

from __future__ import annotations

from pathlib import Path

import typer

from vlm3r.cli.errors import check_output, guarded, report_failure
from vlm3r.cli.options import (BaseFolder, Bench, Cut3rWeights, Device, Dtype, EvalBench, EvalQuestionFile,
                               ModelFolder, ModelFrames, QuestionFile, VisionTower)
from vlm3r.utils.devices import AUTO
from vlm3r.viz.tables import output_console, score_tables

app = typer.Typer(help="Evaluation: VSI-Bench, VSTI-Bench, ScanQA and SQA3D runs, scores, chance baselines, reports.",
                  no_args_is_help=True)


@app.command("score")
@guarded
def score_command(
    *,
    bench: EvalBench,
    qa: EvalQuestionFile,
    pred: Path = typer.Option(..., "--pred", help='Predictions .jsonl: {"id": ..., "prediction": "..."} per line '
                                                 "(ScanQA, SQA3D: also the reference scripts' answer files)."),
    out: Path = typer.Option(None, "--out", help="Folder for scores.json, report.md and plots."),
    spice: bool = typer.Option(False, "--spice", help="ScanQA: also SPICE (needs Java 8; downloads Stanford "
                                                      "CoreNLP models at first use)."),
) -> None:
    """Score model predictions exactly as the benchmark does and print the per-task table.

    Example: vlm3r eval score --bench vsibench --qa qa.jsonl --pred predictions.jsonl --out results/;
    vlm3r eval score --bench scanqa --qa ScanQA_v1.0_val.json --pred runs/scanqa/predictions.jsonl
    """
    from vlm3r.eval.suites import score_bench_files

    check_output(out, folder=True)
    written = [out / "scores.json", out / "report.md"] if out is not None else []
    for item in score_tables(score_bench_files(bench, qa, pred, out, spice), f"{bench}: {pred.name}", written):
        output_console().print(item)


@app.command("baseline")
@guarded
def baseline_command(
    *,
    kind: str = typer.Option(..., "--kind", help="random or frequency."),
    bench: Bench,
    qa: QuestionFile,
    out: Path = typer.Option(None, "--out", help="Folder for scores.json (and, for frequency, predictions.jsonl)."),
) -> None:
    """The paper's chance rows, computed from the question file.

    Example: vlm3r eval baseline --kind frequency --bench vstibench --qa qa.jsonl
    """
    from vlm3r.eval.files import baseline_files

    check_output(out, folder=True)
    names = ["scores.json", "predictions.jsonl"] if kind == "frequency" else ["scores.json"]  # baseline_files writes
    written = [out / name for name in names] if out is not None else []
    for item in score_tables(baseline_files(bench, qa, kind, out), f"{bench}: chance level ({kind})", written):
        output_console().print(item)


@app.command("run")
@guarded
def run_command(
    *,
    model: ModelFolder,
    bench: EvalBench,
    qa: EvalQuestionFile,
    videos: Path = typer.Option(..., "--videos", help="Video root: <dataset>/<scene_name>.mp4 (VSI-Bench), the "
                                                     "records' video_path below it, or <scene_id>.mp4 (ScanQA, "
                                                     "SQA3D; or scannet/<scene_id>.mp4)."),
    out: Path = typer.Option(..., "--out", help="Run folder: predictions.jsonl, run.json, scores.json, report.md."),
    base: BaseFolder = None,
    cut3r: Cut3rWeights = None,
    vision_tower: VisionTower = None,
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N questions of the benchmark."),
    frames: ModelFrames = None,
    batch_size: int = typer.Option(1, "--batch-size", min=1, help="Questions of one video answered together."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1, help="Longest answer, in tokens (default: "
                                                                           "the benchmark's: 16, ScanQA/SQA3D 512)."),
    prompt: str = typer.Option(None, "--prompt", help="ScanQA, SQA3D: which reference script's prompt, preload "
                                                      "(default, model_*_preload.py) or plain (model_scanqa.py, "
                                                      "model_sqa3d.py)."),
    dtype: Dtype = AUTO,
    device: Device = AUTO,
) -> None:
    """Run a whole benchmark: every video encoded and prefilled once, answers appended as they come (rerun the
    same command to resume), then scored into a report (beside the paper's VLM-3R row when the questions are the
    public benchmark's).

    Example: vlm3r eval run --model vlm-3r-llava-qwen2-lora --base LLaVA-NeXT-Video-7B-Qwen2 --cut3r
    cut3r_512_dpt_4_64.pth --bench vsibench --qa VSI-Bench/test.jsonl --videos VSI-Bench --out runs/vsibench;
    ScanQA: --bench scanqa --qa ScanQA_v1.0_val.json --videos scannet_videos --out runs/scanqa;
    several GPUs: torchrun --nproc-per-node 8 -m vlm3r eval run ...
    """
    from vlm3r.eval.run import RunOptions, run_benchmark
    from vlm3r.utils.devices import placement
    from vlm3r.utils.progress import rate_progress_bar

    check_output(out, folder=True)
    chosen = placement(device, dtype)
    options = RunOptions(bench, qa, videos, out, limit, frames, batch_size, max_new_tokens, chosen.dtype,
                         chosen.device, prompt)
    with rate_progress_bar() as bar:
        def start(num_videos: int, num_questions: int, already: int):
            bar.console.print(str(chosen))  # once the folder is this run's
            video_task = bar.add_task("videos", total=num_videos, unit="videos")
            question_task = bar.add_task("questions", total=num_questions, completed=already, unit="q")
            return lambda v, q: (bar.update(video_task, advance=v), bar.update(question_task, advance=q))

        result = run_benchmark(options, model, cut3r, base, vision_tower, progress_factory=start)
    if result.unscored:
        output_console().print(f"wrote {out / 'predictions.jsonl'}, {out / 'report.md'}: {result.unscored}",
                               soft_wrap=True)
    if result.report is None:
        return
    for question, reason in sorted(result.failures.items()):
        report_failure("no answer", f"question {question}", reason)
    written = [out / name for name in ("predictions.jsonl", "scores.json", "report.md")]
    for item in score_tables(result.report, f"{bench}: {out}", written):
        output_console().print(item)
    if result.scope:
        output_console().print(result.scope)
    output_console().print(result.empty)


@app.command("lmms-tasks")
@guarded
def lmms_tasks_command(
    *,
    qa: EvalQuestionFile,
    video_root: Path = typer.Option(..., "--video-root", help="Folder the questions' video paths are relative to "
                                                             "(ScanQA, SQA3D: <scene_id>.mp4 or "
                                                             "scannet/<scene_id>.mp4 below it)."),
    out: Path = typer.Option(..., "--out", help="Folder to pass to lmms-eval as --include_path."),
    bench: EvalBench = "vsibench",
    prompt: str = typer.Option(None, "--prompt", help="ScanQA, SQA3D: which reference script's prompt the model "
                                                      "is asked in, preload (default) or plain."),
) -> None:
    """Write an offline lmms-eval task for a local question file, to run VLM-3R inside lmms-eval.

    Example: vlm3r eval lmms-tasks --qa qa.jsonl --video-root data/synthetic --out lmms_tasks
    then: lmms-eval --model vlm3r --model_args pretrained=DIR,cut3r=FILE,base=DIR --tasks vlm3r_vsibench
    --include_path lmms_tasks; ScanQA: --bench scanqa --qa ScanQA_v1.0_val.json --video-root scannet_videos
    (task vlm3r_scanqa)
    """
    from vlm3r.eval.lmms.tasks import write_bench_lmms_tasks

    check_output(out, folder=True)
    task = write_bench_lmms_tasks(out, bench, qa, video_root, prompt)
    output_console().print(f"wrote task {task} to {out.resolve()}; run lmms-eval with --tasks {task} "
                           f"--include_path {out.resolve()}")
