"""What a benchmark run does that depends on the benchmark, behind one interface, so that ``eval.run`` runs
VSI-Bench, VSTI-Bench, ScanQA and SQA3D alike (per-video encoding and prefix cache, resume, data parallel,
run.json): which questions a file holds, where each one's video is, the text the model reads and the user turn
it is placed in, the answer length, and how the answers are scored and reported."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vlm3r.errors import EvalRunError, InputError
from vlm3r.eval.files import score_files, write_results
from vlm3r.eval.loading import load_questions, video_of
from vlm3r.eval.qa3d_bench import QA3D_BENCHMARKS, Qa3dBenchmark, load_qa3d_questions, qa3d_video
from vlm3r.eval.qa3d_report import score_qa3d_files, write_qa3d_results
from vlm3r.eval.scoring import split_questions
from vlm3r.model.prompt import MAX_NEW_TOKENS, Template
from vlm3r.qa.benchmarks import BENCHMARKS, SPELLINGS, Benchmark, get_benchmark
from vlm3r.qa.prompts import question_text

#: Every name ``--bench`` takes.
BENCH_NAMES = (*BENCHMARKS, *QA3D_BENCHMARKS)


@dataclass(frozen=True)
class Suite:
    """One benchmark as a run needs it.

    - ``load(qa)``: the benchmark's questions of a file, in its order (each has an ``id``);
    - ``video(question, root)``: where its video is; ``text(question)``: what the model reads;
    - ``template``: the user turn the text is placed in (None: the model's own); ``prompt``: its name, recorded;
    - ``write(run_dir, questions, every, predictions, title, note)``: scores.json and report.md; returns the
      report (None when the split cannot be scored).
    """

    name: str
    load: Callable[[Path], list]
    video: Callable[[object, Path], Path]
    text: Callable[[object], str]
    write: Callable[..., object]
    max_new_tokens: int = MAX_NEW_TOKENS
    template: Template | None = None
    prompt: str | None = None


def _spatial_suite(benchmark: Benchmark) -> Suite:
    def load(qa: Path) -> list:
        every, _ = split_questions(benchmark, load_questions(qa))
        if not every:
            raise EvalRunError(f"{qa}: no {benchmark.name} questions in it")
        return every

    def write(run_dir, questions, every, predictions, title, note):
        return write_results(run_dir, benchmark, questions, predictions, title, note, file_questions=every)

    return Suite(benchmark.name, load, video_of, question_text, write)


def _qa3d_suite(bench: Qa3dBenchmark, prompt: str | None) -> Suite:
    name = bench.default_prompt if prompt is None else prompt
    template = bench.prompt(name)

    def write(run_dir, questions, every, predictions, title, note):
        return write_qa3d_results(run_dir, bench, questions, predictions, title, note, prompt=name)

    return Suite(bench.name, lambda qa: load_qa3d_questions(bench, qa), qa3d_video, lambda q: q.text, write,
                 bench.max_new_tokens, template, name)


def get_suite(bench: str, prompt: str | None = None) -> Suite:
    """The suite of ``bench`` (vsibench, vstibench or their short names; scanqa, sqa3d) with ``prompt`` (only the
    3D question-answering benchmarks have several; None: the default)."""
    if bench in QA3D_BENCHMARKS:
        return _qa3d_suite(QA3D_BENCHMARKS[bench], prompt)
    if bench not in SPELLINGS:
        raise InputError(f"--bench: unknown benchmark {bench!r} ({', '.join(BENCH_NAMES)})")
    if prompt is not None:
        raise InputError(f"--prompt: {bench} has one prompt, the benchmark's own (--prompt is for "
                         f"{', '.join(QA3D_BENCHMARKS)})")
    return _spatial_suite(get_benchmark(bench))


def score_bench_files(bench: str, qa: Path, pred: Path, out: Path | None = None, spice: bool = False):
    """``vlm3r eval score``: the predictions ``pred`` scored on the ``bench`` questions of ``qa`` as the benchmark
    does (``eval.files.score_files`` or, for ScanQA and SQA3D, ``eval.qa3d_report.score_qa3d_files``); ``spice``
    only for ScanQA."""
    if spice and bench != "scanqa":
        raise InputError(f"--spice: {bench} has no SPICE score (only scanqa)")
    if bench in QA3D_BENCHMARKS:
        return score_qa3d_files(bench, qa, pred, out, spice)
    return score_files(bench, qa, pred, out)
