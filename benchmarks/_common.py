"""Shared helpers for benchmark scripts: a results table on stdout and a JSON file under benchmarks/results/."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_info() -> dict:
    return {"machine": platform.machine(), "processor": platform.processor(), "python": platform.python_version(),
            "cpus": os.cpu_count()}


def best_time(fn, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def report(name: str, rows: list[dict], extra: dict | None = None) -> Path:
    """Print ``rows`` as a table and write them, with machine info, to benchmarks/results/<name>.json."""
    table = Table(*rows[0].keys(), title=name)
    for row in rows:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    Console().print(table)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine_info(), "rows": rows, **(extra or {})},
                               indent=2))
    print(f"wrote {path}")
    return path
