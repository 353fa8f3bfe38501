"""Human-readable results: a markdown report with per-task bars against the chance baselines and MRA curves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from vlm3r.eval.metrics import MRA_THRESHOLDS
from vlm3r.eval.scoring import ScoreReport
from vlm3r.utils.fileio import atomic_path, atomic_write_text

SHOWN_UNANSWERED = 100  # questions without an answer listed by id in a report
NO_SCORE_NOTE = ("'-' means no score: the random baseline has none for numeric tasks (a random number has no "
                 "defined expected accuracy), so it has no overall either.")


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def write_scores(out_dir: Path, report: ScoreReport, name: str = "scores.json") -> Path:
    path = Path(out_dir) / name
    atomic_write_text(path, json.dumps(report.to_json(), indent=2))
    return path


def write_report(out_dir: Path | str, model: ScoreReport, baselines: dict[str, ScoreReport], title: str,
                 label: str = "model", note: str | None = None, unanswered: dict[str, str] | None = None) -> Path:
    """report.md, tasks.png (bars per column against baselines) and mra.png (MRA threshold curves); ``label``
    names the scored row (the model, or e.g. ``frequency`` when a baseline is the subject). A run adds ``note``
    (what it scored, when not everything) and ``unanswered`` (question id -> why it has no answer: scored as
    wrong, the first ``SHOWN_UNANSWERED`` listed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {label: model, **baselines}
    columns = list(model.columns)
    lines = [f"# {title}", "", f"Benchmark **{model.benchmark}**, {model.n} questions. Overall (as the benchmark "
             f"computes it): **{fmt(model.overall)}**.", ""]
    # VSTI-Bench's paper "Avg." is over its table's columns, not the code's overall: a column of its own
    averages = [("avg. of the paper's columns", lambda r: r.paper_average)] if model.benchmark == "vstibench" else []
    cells = [("overall", lambda r: r.overall), *averages,
             *((c, lambda r, c=c: r.columns.get(c)) for c in columns)]
    lines += ["| | " + " | ".join(head for head, _ in cells) + " |", "|---" * (len(cells) + 1) + "|"]
    for name, report in rows.items():
        lines.append(f"| {name} | " + " | ".join(fmt(value(report)) for _, value in cells) + " |")
    lines += ["", "Per question type:", "", "| question type | questions | " + " | ".join(rows) + " |",
              "|---" * (len(rows) + 2) + "|"]
    for question_type, count in model.counts.items():
        lines.append(f"| {question_type} | {count} | "
                     + " | ".join(fmt(r.per_question_type.get(question_type)) for r in rows.values()) + " |")
    if model.ignored_question_types:
        lines += ["", f"Not part of this benchmark (ignored): {', '.join(model.ignored_question_types)}."]
    lines += ["", "![per-task scores](tasks.png)", ""]
    if model.mra_curves:
        lines += ["Numeric answers: share of predictions within each relative-error threshold (MRA averages "
                  "these).", "", "![MRA threshold curves](mra.png)", ""]
        _plot_mra(out_dir / "mra.png", model)
    lines += ["Scores are 0-100: accuracy for multiple choice (on the letter), Mean Relative Accuracy over "
              "thresholds 0.50-0.95 for numbers. 'random' is the expected score of a uniformly random letter "
              "(none for numbers); 'frequency' always gives the task's most frequent answer (the mean for "
              "continuous numbers). " + NO_SCORE_NOTE]
    if note:
        lines += ["", note]
    if unanswered:
        lines += ["", f"## {len(unanswered)} questions without an answer (scored as wrong)", ""]
        lines += [f"- question {k}: {reason}" for k, reason in sorted(unanswered.items())[:SHOWN_UNANSWERED]]
    _plot_bars(out_dir / "tasks.png", rows, columns)
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)  # drawn off-screen; the program's own matplotlib backend is left alone
    with atomic_path(path) as tmp:
        fig.savefig(tmp)


def _plot_bars(path: Path, rows: dict[str, ScoreReport], columns: list[str]) -> Figure:
    fig = Figure(figsize=(max(6, 1.3 * len(columns) + 2), 4.5), dpi=110)
    ax = fig.subplots()
    width = 0.8 / len(rows)
    x = np.arange(len(columns))
    handles, missing = [], False
    for k, (name, report) in enumerate(rows.items()):
        values = [report.columns.get(c) for c in columns]
        color = f"C{k}"
        bars = ax.bar(x + (k - (len(rows) - 1) / 2) * width, [0 if v is None else v for v in values], width,
                      color=color)
        handles.append(Patch(facecolor=color, label=name))
        for bar, v in zip(bars, values):
            if v is None:  # a flat hatched stub where a row has no score
                bar.set_height(1.5)
                bar.set_hatch("//")
                bar.set_alpha(0.35)
                missing = True
    if missing:
        handles.append(Patch(facecolor="white", edgecolor="grey", hatch="//", label="no score"))
    ax.set_xticks(x, columns, rotation=25, ha="right")
    ax.set_ylabel("score (0-100)")
    ax.set_ylim(0, 100)
    ax.legend(handles=handles)
    ax.set_title(f"{next(iter(rows.values())).benchmark}: per task")
    fig.tight_layout()
    _save(fig, path)
    return fig


def _plot_mra(path: Path, report: ScoreReport) -> Figure:
    fig = Figure(figsize=(6, 4), dpi=110)
    ax = fig.subplots()
    for question_type, curve in report.mra_curves.items():
        ax.plot(MRA_THRESHOLDS, curve, marker="o", label=question_type)
    ax.set_xlabel("threshold theta (prediction within 1 - theta relative error)")
    ax.set_ylabel("% of predictions within")
    ax.set_ylim(0, 100)
    ax.set_title(f"{report.benchmark}: numeric answers within each MRA threshold")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return fig
