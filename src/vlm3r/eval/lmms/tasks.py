"""Writing offline lmms-eval task definitions for a local question file (``--include_path`` folder).

Every path written is absolute, so that lmms-eval runs from any folder (lmms-eval 0.7.3 reads a relative
``data_files`` path against the current folder unless it names a file beside the YAML, and reports a missing file
only as ``RetryError[... FileNotFoundError]``, after retrying). Each task has its own functions module,
``<task>_utils.py``, which lmms-eval runs when it loads the task (for the YAML's ``!function`` tags), before it
reads the data: it checks that the task's data file is there, and fails naming both otherwise.

ScanQA and SQA3D are asked in the reference's prompt, not the model's own: their YAML's ``generation_kwargs``
carry ``vlm3r_prompt: <bench>/<prompt>`` (``PROMPT_KEY``), which lmms-eval 0.7.3 hands to the model's
``generate_until`` with every request, untouched (a deep copy of the YAML's ``generation_kwargs``); the ``vlm3r``
model places the question in that prompt (``request_template``). A task without the key (VSI-Bench, VSTI-Bench,
any other task) gets the model's own prompt."""

from __future__ import annotations

import json
from pathlib import Path

from vlm3r.errors import InputError
from vlm3r.eval.loading import load_questions
from vlm3r.eval.qa3d_bench import QA3D_BENCHMARKS, Qa3dBenchmark, Qa3dQuestion, qa3d_video
from vlm3r.eval.scoring import benchmark_questions
from vlm3r.eval.suites import get_suite
from vlm3r.model.prompt import MAX_NEW_TOKENS, ReferenceQaPrompt
from vlm3r.qa.benchmarks import Benchmark, get_benchmark
from vlm3r.qa.record import QARecord
from vlm3r.utils.fileio import atomic_write_text

#: The generation_kwargs key that names the reference prompt of a request: ``<bench>/<prompt>``, e.g. scanqa/preload.
PROMPT_KEY = "vlm3r_prompt"

_TEMPLATE = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {docs}
test_split: test
output_type: generate_until
doc_to_visual: !function {module}.doc_to_visual
doc_to_text: !function {module}.{doc_to_text}
doc_to_target: {target}
generation_kwargs:
  max_new_tokens: {max_new_tokens}
  temperature: 0
  top_p: 1.0
  num_beams: 1
  do_sample: false
{extra_kwargs}process_results: !function {module}.{process_results}
metric_list:
{metrics}metadata:
  - version: 0.0
"""

_METRIC = """  - metric: {metric}
    aggregation: !function {module}.{aggregation}
    higher_is_better: true
"""

_UTILS = '''"""Functions the lmms-eval task {task} ({task}.yaml) points at; written by vlm3r eval lmms-tasks."""

from vlm3r.eval.lmms.task_utils import *  # noqa: F401,F403
from vlm3r.eval.lmms.task_utils import check_data_file

check_data_file({task_literal}, {docs})  # run as lmms-eval loads the task, before it reads the data
'''


def _write_task(out_dir: Path, task: str, rows: list[dict], max_new_tokens: int, metrics: list[tuple[str, str]],
                doc_to_text: str, process_results: str, target: str, extra_kwargs: dict[str, str]) -> str:
    """``<task>_docs.jsonl`` (``rows``), ``<task>.yaml`` and ``<task>_utils.py`` in ``out_dir`` (absolute);
    ``metrics``: (metric, aggregation function) pairs; ``extra_kwargs``: more generation_kwargs, as text."""
    docs = out_dir / f"{task}_docs.jsonl"
    atomic_write_text(docs, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    # JSON strings are YAML double-quoted scalars: a '#' or ': ' in a folder name stays part of the path
    module = f"{task}_utils"
    yaml = _TEMPLATE.format(
        task=json.dumps(task), docs=json.dumps(str(docs)), module=module, doc_to_text=doc_to_text, target=target,
        max_new_tokens=max_new_tokens, process_results=process_results,
        extra_kwargs="".join(f"  {k}: {json.dumps(v)}\n" for k, v in extra_kwargs.items()),
        metrics="".join(_METRIC.format(metric=m, module=module, aggregation=a) for m, a in metrics))
    atomic_write_text(out_dir / f"{task}.yaml", yaml)
    atomic_write_text(out_dir / f"{module}.py", _UTILS.format(task=task, task_literal=repr(task), docs=repr(str(docs))))
    return task


def write_lmms_tasks(out_dir: Path | str, benchmark: Benchmark, questions: list[QARecord], video_root: Path | str,
                     task_name: str | None = None) -> str:
    """Write ``<task>.yaml`` (its data file named by its absolute path), ``<task>_docs.jsonl`` (video paths made
    absolute) and ``<task>_utils.py`` into ``out_dir``; returns the task name (``vlm3r_vsibench`` /
    ``vlm3r_vstibench`` by default)."""
    kept, _ = benchmark_questions(benchmark, questions)
    if not kept:
        raise InputError(f"no {benchmark.name} questions to write")
    root = Path(video_root).resolve()
    rows = []
    for record in kept:
        row = record.to_dict()
        row["video_path"] = str(root / record.video_path)
        row["ground_truth"] = str(record.ground_truth)  # one column type for the datasets loader
        row["options"] = [str(o) for o in record.options]
        rows.append(row)
    return _write_task(Path(out_dir).resolve(), task_name or f"vlm3r_{benchmark.name}", rows, MAX_NEW_TOKENS,
                       [("vlm3r_overall", f"aggregate_{benchmark.name}")], "doc_to_text", "process_results",
                       "ground_truth", {})


def qa3d_doc(bench: Qa3dBenchmark, question: Qa3dQuestion, video_root: Path) -> dict:
    """A ScanQA / SQA3D question as a document of its lmms-eval task: its video found as ``eval run`` finds it
    (``qa3d_video``), absolute; ``text`` what the model reads, as the run gives it."""
    return {"benchmark": bench.name, "id": question.id, "scene_id": question.scene_id, "text": question.text,
            "answers": list(question.answers), "question_type": question.question_type,
            "video_path": str(qa3d_video(question, video_root))}


def write_qa3d_lmms_tasks(out_dir: Path | str, bench: Qa3dBenchmark, questions: list[Qa3dQuestion],
                          video_root: Path | str, prompt: str | None = None, task_name: str | None = None,
                          source: Path | str = "questions") -> str:
    """The task ``vlm3r_scanqa`` / ``vlm3r_sqa3d`` (or ``task_name``): the benchmark's answer length (512 new
    tokens), greedy, its reference prompt ``prompt`` (None: the default) named in the generation_kwargs
    (``PROMPT_KEY``), and one metric per score of ``bench.metrics`` (EM1, ...; ScanQA also EM1_refined and the
    captioning metrics), each the whole set's score by vlm3r's scorer, in points. ``source``: the question
    file, for errors. A split without public answers (ScanQA's test splits) is refused: the task scores."""
    name = bench.default_prompt if prompt is None else prompt
    bench.prompt(name)  # an unknown name is refused here, listing the known
    if not questions:
        raise InputError(f"{source}: no {bench.name} questions to write")
    if not all(q.answers for q in questions):
        raise InputError(f"{source}: these {bench.name} questions have no answers (ScanQA's test answers are not "
                         "public), and an lmms-eval task scores its answers; vlm3r eval run answers such a split "
                         "without scoring it")
    root = Path(video_root).resolve()
    rows = [qa3d_doc(bench, q, root) for q in questions]
    return _write_task(Path(out_dir).resolve(), task_name or f"vlm3r_{bench.name}", rows, bench.max_new_tokens,
                       [(metric, "qa3d_aggregate") for metric in bench.metrics], "qa3d_doc_to_text",
                       "qa3d_process_results", "answers", {PROMPT_KEY: f"{bench.name}/{name}"})


def write_bench_lmms_tasks(out_dir: Path | str, bench: str, qa: Path | str, video_root: Path | str,
                           prompt: str | None = None) -> str:
    """``vlm3r eval lmms-tasks``: the task of the ``bench`` questions in ``qa`` (VSI-Bench, VSTI-Bench: the
    benchmark's prompt; ScanQA, SQA3D: the reference prompt ``prompt``), written into ``out_dir``; its name."""
    suite = get_suite(bench, prompt)  # refuses an unknown benchmark, or --prompt where there is one prompt
    if bench not in QA3D_BENCHMARKS:
        return write_lmms_tasks(out_dir, get_benchmark(bench), load_questions(qa), video_root)
    return write_qa3d_lmms_tasks(out_dir, QA3D_BENCHMARKS[bench], suite.load(Path(qa)), video_root, suite.prompt,
                                 source=qa)


def request_template(gen_kwargs: dict) -> ReferenceQaPrompt | None:
    """The reference prompt a request's ``generation_kwargs`` name (``PROMPT_KEY``: ``<bench>/<prompt>``); None
    without the key (the model's own prompt). An unknown value is an error naming the key and the known values."""
    value = gen_kwargs.get(PROMPT_KEY)
    if value is None:
        return None
    bench, _, name = str(value).partition("/")
    if bench not in QA3D_BENCHMARKS or name not in QA3D_BENCHMARKS[bench].prompts:
        known = ", ".join(f"{b}/{p}" for b, benchmark in QA3D_BENCHMARKS.items() for p in benchmark.prompts)
        raise InputError(f"generation_kwargs.{PROMPT_KEY}: {value!r} is not a reference prompt (one of {known}; "
                         "without the key, the model's own prompt)")
    return QA3D_BENCHMARKS[bench].prompt(name)
