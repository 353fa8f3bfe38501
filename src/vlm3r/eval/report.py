"""Human-readable results: a markdown report with per-task bars against the chance baselines and MRA curves."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vlm3r.eval.metrics import MRA_THRESHOLDS  # noqa: E402
from vlm3r.eval.scoring import ScoreReport  # noqa: E402
from vlm3r.utils.fileio import atomic_path, atomic_write_text  # noqa: E402


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def write_scores(out_dir: Path, report: ScoreReport, name: str = "scores.json") -> Path:
    path = Path(out_dir) / name
    atomic_write_text(path, json.dumps(report.to_json(), indent=2))
    return path


def write_report(out_dir: Path | str, model: ScoreReport, baselines: dict[str, ScoreReport], title: str) -> Path:
    """report.md, tasks.png (bars per column against baselines) and mra.png (MRA threshold curves)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {"model": model, **baselines}
    columns = list(model.columns)
    lines = [f"# {title}", "", f"Benchmark **{model.benchmark}**, {model.n} questions. Overall (as the benchmark "
             f"computes it): **{fmt(model.overall)}**.", ""]
    if model.paper_average is not None and model.benchmark == "vstibench":
        lines += [f"Average over the paper's table columns: {fmt(model.paper_average)}.", ""]
    lines += ["| | overall | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for name, report in rows.items():
        lines.append(f"| {name} | {fmt(report.overall)} | "
                     + " | ".join(fmt(report.columns.get(c)) for c in columns) + " |")
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
              "continuous numbers)."]
    _plot_bars(out_dir / "tasks.png", rows, columns)
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _plot_bars(path: Path, rows: dict[str, ScoreReport], columns: list[str]) -> None:
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(columns) + 2), 4.5), dpi=110)
    width = 0.8 / len(rows)
    x = np.arange(len(columns))
    for k, (name, report) in enumerate(rows.items()):
        values = [report.columns.get(c) for c in columns]
        heights = [0 if v is None else v for v in values]
        bars = ax.bar(x + (k - (len(rows) - 1) / 2) * width, heights, width, label=name)
        for bar, v in zip(bars, values):
            if v is None:
                bar.set_hatch("//")
                bar.set_alpha(0.3)
    ax.set_xticks(x, columns, rotation=25, ha="right")
    ax.set_ylabel("score (0-100)")
    ax.set_ylim(0, 100)
    ax.legend()
    ax.set_title(f"{next(iter(rows.values())).benchmark}: per task")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def _plot_mra(path: Path, report: ScoreReport) -> None:
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for question_type, curve in report.mra_curves.items():
        ax.plot(MRA_THRESHOLDS, curve, marker="o", label=question_type)
    ax.set_xlabel("threshold theta (prediction within 1 - theta relative error)")
    ax.set_ylabel("% of predictions within")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
