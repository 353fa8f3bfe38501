"""Writing offline lmms-eval task definitions for a local question file (``--include_path`` folder)."""

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
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: ground_truth
generation_kwargs:
  max_new_tokens: {max_new_tokens}
  temperature: 0
  top_p: 1.0
  num_beams: 1
  do_sample: false
process_results: !function utils.process_results
metric_list:
  - metric: vlm3r_overall
    aggregation: !function utils.aggregate_{benchmark}
    higher_is_better: true
metadata:
  - version: 0.0
"""


def write_lmms_tasks(out_dir: Path | str, benchmark: Benchmark, questions: list[QARecord], video_root: Path | str,
                     task_name: str | None = None) -> str:
    """Write ``<task>.yaml``, ``<task>_docs.jsonl`` (video paths made absolute) and ``utils.py`` into ``out_dir``;
    returns the task name (``vlm3r_vsibench`` / ``vlm3r_vstibench`` by default)."""
    out_dir = Path(out_dir)
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
    atomic_write_text(out_dir / f"{task}.yaml", _TEMPLATE.format(task=json.dumps(task), docs=json.dumps(str(docs)),
                                                                  benchmark=benchmark.name,
                                                                  max_new_tokens=MAX_NEW_TOKENS))
    atomic_write_text(out_dir / "utils.py", "from vlm3r.eval.lmms.task_utils import *  # noqa: F401,F403\n")
    return task
