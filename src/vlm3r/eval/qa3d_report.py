"""ScanQA and SQA3D results: question and prediction files in, ``scores.json``, ``report.md`` and ``types.png``
out: what ``vlm3r eval score --bench scanqa|sqa3d`` does, and how a run of them scores its answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from vlm3r.errors import InputError
from vlm3r.eval.files import checksum_note
from vlm3r.eval.predictions import empty_answers
from vlm3r.eval.qa3d import Qa3dReport, score_qa3d
from vlm3r.eval.qa3d_bench import (QA3D_BENCHMARKS, Qa3dBenchmark, Qa3dQuestion, load_qa3d_questions,
                                   read_qa3d_predictions)
from vlm3r.eval.report import BAR_AXIS_TOP, LEGEND_WIDTH, SHOWN_UNANSWERED, empty_answers_note, save_figure
from vlm3r.utils.fileio import atomic_write_text

# How each metric is headed in a report's tables (scores.json keeps the reference's names).
HEADINGS = {"EM1": "EM@1", "EM1_refined": "EM@1 refined", "Bleu_1": "BLEU-1", "Bleu_2": "BLEU-2",
            "Bleu_3": "BLEU-3", "Bleu_4": "BLEU-4", "METEOR": "METEOR", "ROUGE_L": "ROUGE-L", "CIDEr": "CIDEr",
            "SPICE": "SPICE"}
PLOTTED = ("EM1", "EM1_refined")  # the per-type bars: the exact-match scores (0-100, one axis)
METRIC_NOTES = {
    "scanqa": ("EM@1: the cleaned answer is one of the cleaned reference answers; refined: also when one, spaces "
               "removed, contains the other (an empty answer therefore always counts). BLEU-1..4, METEOR, ROUGE-L "
               "and CIDEr compare the cleaned answer with the cleaned references as captions (pycocoevalcap, PTB "
               "tokenizer), over the whole set (overall) and over each type's answers as their own corpus, so a "
               "type's CIDEr uses that type's document frequencies and the overall is not the mean of the types. "
               "All scores are x100, as the reference prints them."),
    "sqa3d": ("EM@1: the cleaned answer equals SQA3D's one answer (lower case, punctuation out, numbers as words, "
              "articles dropped); x100."),
}


def bench_of(name: str) -> Qa3dBenchmark:
    """The 3D question-answering benchmark called ``name`` (scanqa or sqa3d)."""
    if name not in QA3D_BENCHMARKS:
        raise InputError(f"--bench: {name!r} is not a 3D question-answering benchmark ({', '.join(QA3D_BENCHMARKS)})")
    return QA3D_BENCHMARKS[name]


def require_answers(bench: Qa3dBenchmark, questions: list[Qa3dQuestion], qa: Path) -> None:
    """Refuse to score a split whose answers are not public (ScanQA's test splits)."""
    if not all(q.answers for q in questions):
        raise InputError(f"{qa}: these {bench.name} questions have no answers (ScanQA's test answers are not "
                         "public: its evaluation server scores them), so they cannot be scored here")


def score_answers(bench: Qa3dBenchmark, questions: list[Qa3dQuestion], predictions: list[tuple[str, str]],
                  source: str, spice: bool = False, prompt: str | None = None) -> Qa3dReport:
    """``score_qa3d`` with Java started for the captioning metrics only when the benchmark has them (once per
    process: ``eval.captions.shared_scorer``)."""
    if set(bench.metrics) <= {"EM1", "EM1_refined"}:
        report = score_qa3d(bench, questions, predictions, source)
    else:
        from vlm3r.eval.captions import SPICE, shared_scorer

        report = score_qa3d(bench, questions, predictions, source, captions=shared_scorer(spice).grouped_scores)
        report.absent = [] if spice else [SPICE]
    report.prompt = prompt
    return report


def score_qa3d_files(bench: str, qa: Path, pred: Path, out: Path | None = None, spice: bool = False) -> Qa3dReport:
    """Score the answers in ``pred`` (vlm3r's predictions or the reference scripts' answer files) on the
    ``bench`` questions of ``qa``; with ``out``, write scores.json, report.md and types.png there."""
    benchmark = bench_of(bench)
    questions = load_qa3d_questions(benchmark, qa)
    require_answers(benchmark, questions, qa)
    predictions = read_qa3d_predictions(pred)
    report = score_answers(benchmark, questions, predictions, str(pred), spice)
    if out is not None:
        write_qa3d_scores(out, report)
        empty = empty_answers({qid: {"prediction": text} for qid, text in predictions})
        write_qa3d_report(out, report, f"{benchmark.name} results: {Path(pred).name}", note=checksum_note(qa),
                          empty=empty)
    return report


def write_qa3d_results(run_dir: Path, bench: Qa3dBenchmark, questions: list[Qa3dQuestion],
                       predictions: dict[str, dict], title: str, note: str | None = None,
                       prompt: str | None = None) -> Qa3dReport | None:
    """A run's scores.json, report.md and types.png of ``questions`` (answers in ``predictions``, rows as
    predictions.jsonl holds them; rows of other questions are not scored); a split without public answers gets
    a report that says so and no scores (None)."""
    scored = {q.id: predictions[q.id] for q in questions}
    failed = {k: row["error"] for k, row in scored.items() if row.get("error")}
    if not all(q.answers for q in questions):
        lines = [f"# {title}", "", f"{len(questions)} {bench.name} questions answered (predictions.jsonl), none "
                 "scored: the answers of this split are not public (ScanQA's test splits are scored by its "
                 "evaluation server).", ""]
        atomic_write_text(run_dir / "report.md", "\n".join(lines + ([note] if note else [])) + "\n")
        return None
    rows = [(k, row["prediction"]) for k, row in scored.items()]
    report = score_answers(bench, questions, rows, str(run_dir / "predictions.jsonl"), prompt=prompt)
    write_qa3d_scores(run_dir, report)
    write_qa3d_report(run_dir, report, title, note=note, unanswered=failed, empty=empty_answers(scored))
    return report


def write_qa3d_scores(out_dir: Path, report: Qa3dReport) -> Path:
    path = Path(out_dir) / "scores.json"
    atomic_write_text(path, json.dumps(report.to_json(), indent=2))
    return path


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def write_qa3d_report(out_dir: Path | str, report: Qa3dReport, title: str, note: str | None = None,
                      unanswered: dict[str, str] | None = None, empty: list[str] | None = None) -> Path:
    """report.md (overall metrics, the per-type table, what each metric means) and types.png (the per-type
    exact-match bars). ``note``: what was scored when not everything; ``unanswered``: question id -> why it has
    no answer (scored as wrong); ``empty``: ids of the answers that are empty text."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = list(report.overall)
    prompt = f" Prompt: `{report.prompt}`." if report.prompt else ""
    lines = [f"# {title}", "", f"Benchmark **{report.benchmark}**, {report.n} questions.{prompt}", ""]
    if empty is not None:
        lines += [empty_answers_note(empty, report.n), ""]
    lines += ["| | " + " | ".join(HEADINGS[m] for m in metrics) + " |", "|---" * (len(metrics) + 1) + "|",
              "| overall | " + " | ".join(_cell(report.overall[m]) for m in metrics) + " |", ""]
    if report.absent:
        lines += [f"Not computed: {', '.join(report.absent)} (the reference also reports SPICE; it needs Java 8 "
                  "and downloads Stanford CoreNLP models at first use: `vlm3r eval score --spice`).", ""]
    if report.multiline:
        lines += [f"{report.multiline} answers hold a line break other than `\\n` (`\\r`, `\\v`, `\\f`, U+2028 "
                  "or U+2029): each is scored as one line. The reference's tokenizer would end the answer there and "
                  "shift every later answer onto another question's references.", ""]
    lines += ["Per question type:", "", "| question type | questions | " + " | ".join(HEADINGS[m] for m in metrics)
              + " |", "|---" * (len(metrics) + 2) + "|"]
    for kind, count in report.counts.items():
        lines.append(f"| {kind} | {count} | " + " | ".join(_cell(report.per_type[kind].get(m)) for m in metrics)
                     + " |")
    lines += ["", "![per-type exact match](types.png)", "", METRIC_NOTES[report.benchmark]]
    if note:
        lines += ["", note]
    if unanswered:
        lines += ["", f"## {len(unanswered)} questions without an answer (scored as wrong)", ""]
        lines += [f"- question {k}: {reason}" for k, reason in sorted(unanswered.items())[:SHOWN_UNANSWERED]]
    _plot_types(out_dir / "types.png", report)
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _plot_types(path: Path, report: Qa3dReport) -> Figure:
    """Bars per question type (and overall), one colour per exact-match metric, each labelled with its value."""
    shown = [m for m in PLOTTED if m in report.overall]
    names = ["overall", *report.counts]
    fig = Figure(figsize=(max(6, 1.1 * len(names) + 2) + LEGEND_WIDTH, 4.5), dpi=110)
    ax = fig.subplots()
    width = 0.8 / len(shown)
    x = np.arange(len(names))
    for k, metric in enumerate(shown):
        values = [report.overall[metric], *(report.per_type[t][metric] for t in report.counts)]
        bars = ax.bar(x + (k - (len(shown) - 1) / 2) * width, values, width, color=f"C{k}", label=HEADINGS[metric])
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], rotation=90, fontsize=7, padding=2)
    ax.set_xticks(x, [f"{n}\n({report.counts.get(n, report.n)})" for n in names], rotation=0, fontsize=8)
    ax.set_ylabel("score (0-100)")
    ax.set_ylim(0, BAR_AXIS_TOP)
    ax.set_yticks(range(0, 101, 20))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8)
    ax.set_title(f"{report.benchmark}: exact match per question type (questions)")
    fig.tight_layout()
    save_figure(fig, path)
    return fig
