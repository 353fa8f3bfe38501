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
LEGEND_WIDTH = 1.8  # inches added to a plot for its legend, beside the axes
BAR_AXIS_TOP = 115  # the bar plot's y axis ends above 100 (scores are 0-100) to leave room for the value labels
COINCIDE_TOLERANCE = 0.5  # percentage points: MRA curves this close everywhere are drawn on top of each other
MRA_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # one a line, so that equal lines stay visible
MRA_DASHES = ("-", "--", "-.", ":")
NO_SCORE_NOTE = ("'-' means no score: the random baseline has none for numeric tasks (a random number has no "
                 "defined expected accuracy), so it has no overall either.")


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def write_scores(out_dir: Path, report: ScoreReport, name: str = "scores.json") -> Path:
    path = Path(out_dir) / name
    atomic_write_text(path, json.dumps(report.to_json(), indent=2))
    return path


def empty_answers_note(empty: list[str], total: int) -> str:
    """One line on the answers that are empty text (``empty``: their question ids) of ``total`` scored: a model
    that generates nothing scores 0 without any error, so a run always says how many there were."""
    if not empty:
        return f"Empty answers: none of the {total}."
    shown = ", ".join(empty[:SHOWN_UNANSWERED]) + (", ..." if len(empty) > SHOWN_UNANSWERED else "")
    return (f"Empty answers: {len(empty)} of the {total} answers are empty text (the model generated nothing; "
            f"each is scored as wrong): questions {shown}.")


def score_table(rows: dict[str, ScoreReport]) -> list[str]:
    """The markdown lines of the per-task table: a row per report (the first one's columns), its overall score
    first (and, for VSTI-Bench, the mean of the paper's columns, which is its "Avg.")."""
    model = next(iter(rows.values()))
    # VSTI-Bench's paper "Avg." is over its table's columns, not the code's overall: a column of its own
    averages = [("avg. of the paper's columns", lambda r: r.paper_average)] if model.benchmark == "vstibench" else []
    cells = [("overall", lambda r: r.overall), *averages,
             *((c, lambda r, c=c: r.columns.get(c)) for c in model.columns)]
    lines = ["| | " + " | ".join(head for head, _ in cells) + " |", "|---" * (len(cells) + 1) + "|"]
    return lines + [f"| {name} | " + " | ".join(fmt(value(report)) for _, value in cells) + " |"
                    for name, report in rows.items()]


def write_report(out_dir: Path | str, model: ScoreReport, baselines: dict[str, ScoreReport], title: str,
                 label: str = "model", note: str | None = None, unanswered: dict[str, str] | None = None,
                 rows_note: str | None = None, empty: list[str] | None = None) -> Path:
    """report.md, tasks.png (bars per column against baselines) and mra.png (MRA threshold curves); ``label``
    names the scored row (the model, or e.g. ``frequency`` when a baseline is the subject). A run adds ``note``
    (what it scored, when not everything), ``unanswered`` (question id -> why it has no answer: scored as
    wrong, the first ``SHOWN_UNANSWERED`` listed), ``rows_note`` (where a comparison row comes from, under the
    table) and ``empty`` (ids of the answers that are empty text; None: not counted, as for a baseline)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {label: model, **baselines}
    lines = [f"# {title}", "", f"Benchmark **{model.benchmark}**, {model.n} questions. Overall (as the benchmark "
             f"computes it): **{fmt(model.overall)}**.", ""]
    if empty is not None:
        lines += [f"**{empty_answers_note(empty, model.n)}**" if empty else empty_answers_note(empty, model.n), ""]
    lines += score_table(rows)
    if rows_note:
        lines += ["", rows_note]
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
    _plot_bars(out_dir / "tasks.png", rows, list(model.columns))
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def save_figure(fig: Figure, path: Path) -> None:
    """Draw ``fig`` off-screen into ``path`` (written to a temporary file, then renamed)."""
    FigureCanvasAgg(fig)  # drawn off-screen; the program's own matplotlib backend is left alone
    with atomic_path(path) as tmp:
        fig.savefig(tmp)


def _plot_bars(path: Path, rows: dict[str, ScoreReport], columns: list[str]) -> Figure:
    """Bars per column, one colour a row, each labelled with its value ("0.0" is drawn, a missing score is a
    hatched stub labelled "-"); the legend stands beside the axes, never over a bar."""
    fig = Figure(figsize=(max(6, 1.3 * len(columns) + 2) + LEGEND_WIDTH, 4.5), dpi=110)
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
        ax.bar_label(bars, labels=[fmt(v) for v in values], rotation=90, fontsize=7, padding=2)
    if missing:
        handles.append(Patch(facecolor="white", edgecolor="grey", hatch="//", label="no score"))
    ax.set_xticks(x, columns, rotation=25, ha="right")
    ax.set_ylabel("score (0-100)")
    ax.set_ylim(0, BAR_AXIS_TOP)  # room above a bar of 100 for its label
    ax.set_yticks(range(0, 101, 20))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8)
    ax.set_title(f"{next(iter(rows.values())).benchmark}: per task")
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def coinciding_curves(curves: dict[str, list[float]]) -> list[list[str]]:
    """Groups of two or more curves within ``COINCIDE_TOLERANCE`` of each other at every threshold (drawn on top
    of one another), in the order of ``curves``."""
    groups: list[list[str]] = []
    for name, curve in curves.items():
        group = next((g for g in groups if np.max(np.abs(np.subtract(curves[g[0]], curve))) <= COINCIDE_TOLERANCE),
                     None)
        if group is None:
            groups.append([name])
        else:
            group.append(name)
    return [g for g in groups if len(g) > 1]


def _plot_mra(path: Path, report: ScoreReport) -> Figure:
    """One line a numeric question type, each with its own marker, dash and marker size (larger, hollow ones
    drawn first), so that equal lines stay distinguishable; the title names lines that coincide. The legend
    stands beside the axes."""
    fig = Figure(figsize=(6 + LEGEND_WIDTH, 4), dpi=110)
    ax = fig.subplots()
    count = len(report.mra_curves)
    for k, (question_type, curve) in enumerate(report.mra_curves.items()):
        ax.plot(MRA_THRESHOLDS, curve, marker=MRA_MARKERS[k % len(MRA_MARKERS)],
                linestyle=MRA_DASHES[k % len(MRA_DASHES)], markersize=4 + 2.5 * (count - 1 - k),
                markerfacecolor="none" if k < count - 1 else None, clip_on=False, label=question_type)
    title = f"{report.benchmark}: numeric answers within each MRA threshold"
    groups = coinciding_curves(report.mra_curves)
    if groups:
        title += "".join("\nequal, drawn on top of each other: " + " = ".join(g) for g in groups)
    ax.set_xlabel("threshold theta (prediction within 1 - theta relative error)")
    ax.set_ylabel("% of predictions within")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
