"""Writing offline lmms-eval task definitions for a local question file (``--include_path`` folder).

Every path written is absolute, so that lmms-eval runs from any folder (lmms-eval 0.7.3 reads a relative
``data_files`` path against the current folder unless it names a file beside the YAML, and reports a missing file
only as ``RetryError[... FileNotFoundError]``, after retrying). Each task has its own functions module,
``<task>_utils.py``, which lmms-eval runs when it loads the task (for the YAML's ``!function`` tags), before it
reads the data: it checks that the task's data file is there, and fails naming both otherwise."""

from __future__ import annotations

import json
from pathlib import Path

from vlm3r.errors import InputError
from vlm3r.eval.scoring import benchmark_questions
from vlm3r.model.prompt import MAX_NEW_TOKENS
from vlm3r.qa.benchmarks import Benchmark
from vlm3r.qa.record import QARecord
from vlm3r.utils.fileio import atomic_write_text

_TEMPLATE = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {docs}
test_split: test
output_type: generate_until
doc_to_visual: !function {module}.doc_to_visual
doc_to_text: !function {module}.doc_to_text
doc_to_target: ground_truth
generation_kwargs:
  max_new_tokens: {max_new_tokens}
  temperature: 0
  top_p: 1.0
  num_beams: 1
  do_sample: false
process_results: !function {module}.process_results
metric_list:
  - metric: vlm3r_overall
    aggregation: !function {module}.aggregate_{benchmark}
    higher_is_better: true
metadata:
  - version: 0.0
"""

_UTILS = '''"""Functions the lmms-eval task {task} ({task}.yaml) points at; written by vlm3r eval lmms-tasks."""

from vlm3r.eval.lmms.task_utils import *  # noqa: F401,F403
from vlm3r.eval.lmms.task_utils import check_data_file

check_data_file({task_literal}, {docs})  # run as lmms-eval loads the task, before it reads the data
'''


def write_lmms_tasks(out_dir: Path | str, benchmark: Benchmark, questions: list[QARecord], video_root: Path | str,
                     task_name: str | None = None) -> str:
    """Write ``<task>.yaml`` (its data file named by its absolute path), ``<task>_docs.jsonl`` (video paths made
    absolute) and ``<task>_utils.py`` into ``out_dir``; returns the task name (``vlm3r_vsibench`` /
    ``vlm3r_vstibench`` by default)."""
    out_dir = Path(out_dir).resolve()
    task = task_name or f"vlm3r_{benchmark.name}"
    kept, _ = benchmark_questions(benchmark, questions)
    if not kept:
        raise InputError(f"no {benchmark.name} questions to write")
    root = Path(video_root).resolve()
    docs = out_dir / f"{task}_docs.jsonl"
    lines = []
    for record in kept:
        row = record.to_dict()
        row["video_path"] = str(root / record.video_path)
        row["ground_truth"] = str(record.ground_truth)  # one column type for the datasets loader
        row["options"] = [str(o) for o in record.options]
        lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(docs, "\n".join(lines) + "\n")
    # JSON strings are YAML double-quoted scalars: a '#' or ': ' in a folder name stays part of the path
    module = f"{task}_utils"
    atomic_write_text(out_dir / f"{task}.yaml", _TEMPLATE.format(task=json.dumps(task), docs=json.dumps(str(docs)),
                                                                  module=module, benchmark=benchmark.name,
                                                                  max_new_tokens=MAX_NEW_TOKENS))
    atomic_write_text(out_dir / f"{module}.py", _UTILS.format(task=task, task_literal=repr(task), docs=repr(str(docs))))
    return task
