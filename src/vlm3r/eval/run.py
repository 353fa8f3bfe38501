"""A whole benchmark in one run: questions grouped by video, each video decoded, encoded and prefilled once,
predictions appended as they come (an interrupted run resumes where it stopped), then scored and reported.

Layout of a run folder:
- ``predictions.jsonl``: one ``{"id", "prediction"}`` line per question (``"error"`` too when its video failed:
  scored as wrong and listed in the report), in the question file's order once the run is complete;
  while it runs, every process appends to its own ``predictions.rank<k>.jsonl`` (one process: to
  ``predictions.jsonl``), flushed line by line;
- ``run.json``: what ran: the model's files with their checksums, dtype, device, frames, the config fields that
  change the answers, versions; a rerun with other settings into the same folder is refused;
- ``scores.json``, ``report.md`` (with the paper's VLM-3R row and the chance baselines), ``tasks.png``,
  ``mra.png``: the questions of this run (the first ``--limit`` of the file); answers the folder holds beyond them
  (from an earlier run with a larger limit) are kept, never deleted, and the report says what it scored;
- ``.run.lock``: an exclusive ``flock`` held by the run (by process 0 under a launcher) while it writes: a second
  run into the folder is refused at once. The system releases it when the process ends, however it ends, so a
  killed run leaves only the file (holding its process id), which locks nothing.

Data parallel under ``torchrun`` or ``accelerate launch``: videos are dealt to the processes in turn; process 0
merges the predictions and scores them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vlm3r.errors import Vlm3rError
from vlm3r.eval.benchmarks import Benchmark
from vlm3r.eval.files import chance_rows
from vlm3r.eval.loading import load_questions
from vlm3r.eval.report import write_report, write_scores
from vlm3r.eval.scoring import ScoreReport, paper_report, score, split_questions
from vlm3r.model.prompt import MAX_NEW_TOKENS
from vlm3r.qa.prompts import question_text
from vlm3r.qa.record import QARecord
from vlm3r.utils.fileio import atomic_write_text, parse_jsonl_objects, read_json, settled, sha256_of
from vlm3r.utils.parallel import shard_of
from vlm3r.utils.video import VideoError, first_listed, unreadable_videos

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.jsonl"
RUN_FILE = "run.json"
LOCK_FILE = ".run.lock"
RANK_VARIABLE, WORLD_VARIABLE = "RANK", "WORLD_SIZE"  # a process's rank and the process count, as launchers set them
# Settings that change the answers: a run folder holds predictions of one setting only.
IDENTITY_FIELDS = ("bench", "qa_sha256", "model_files", "dtype", "frames", "max_new_tokens", "config")


class EvalRunError(Vlm3rError):
    """A run that cannot start or continue; the message names the file, video or setting."""


# ---------------------------------------------------------------------- questions and videos
def video_of(record: QARecord, root: Path) -> Path:
    """Where a question's video is: ``video_path`` relative to ``root`` (vlm3r and VSTI-Bench), else
    ``root/<dataset>/<scene_name>.mp4`` (VSI-Bench's public layout)."""
    if record.video_path:
        return root / record.video_path
    if record.dataset and record.scene_name:
        return root / record.dataset / f"{record.scene_name}.mp4"
    raise EvalRunError(f"question {record.id}: no video_path, and no dataset and scene_name to find its video")


@dataclass
class VideoQuestions:
    video: Path
    questions: list[QARecord] = field(default_factory=list)


def group_by_video(records: list[QARecord], root: Path) -> list[VideoQuestions]:
    """Questions per video, videos in the order of their first question, questions in file order."""
    groups: dict[Path, VideoQuestions] = {}
    for record in records:
        video = video_of(record, root)
        groups.setdefault(video, VideoQuestions(video)).questions.append(record)
    return list(groups.values())


def check_videos(groups: list[VideoQuestions]) -> None:
    """Every video opens (header read), or one error lists those that do not, before any model work."""
    reasons = unreadable_videos(group.video for group in groups)
    bad = [f"{reasons[group.video]} ({len(group.questions)} questions)" for group in groups if group.video in reasons]
    if bad:
        raise EvalRunError(f"{len(bad)} of {len(groups)} videos cannot be read: {first_listed(bad)}")


# ---------------------------------------------------------------------- one run per folder
@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock while the block runs: an exclusive ``flock`` on ``LOCK_FILE``, which the system
    releases when the process ends however it ends (the file stays, holding the last holder's process id, and
    locks nothing by itself). Raises ``EvalRunError`` naming the folder at once when another process holds it."""
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            by = f" (process {holder})" if holder.isdigit() else ""
            raise EvalRunError(f"{run_dir} (--out): another vlm3r eval run is writing into this folder{by}; wait "
                               "for it to finish (then run again to resume or score it), or give another --out") \
                from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- predictions on disk
def read_predictions(path: Path, repair: bool = False) -> dict[str, dict]:
    """The complete lines of a predictions file by id (as text). A last line cut off by a kill is dropped (and,
    with ``repair``, removed from the file, so that appending continues cleanly); a repeated id is an error."""
    if not path.is_file():
        return {}
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    if repair and len(complete) != len(data):
        with path.open("r+b") as f:
            f.truncate(len(complete))
    rows: dict[str, dict] = {}
    for number, row in parse_jsonl_objects(complete.decode("utf-8").splitlines(), str(path), EvalRunError):
        key = str(row.get("id"))
        if key in rows:
            raise EvalRunError(f"{path}: line {number}: id {row.get('id')!r} appears twice")
        rows[key] = row
    return rows


def prediction_files(run_dir: Path) -> list[Path]:
    return sorted([run_dir / PREDICTIONS, *run_dir.glob("predictions.rank*.jsonl")])


def done_predictions(run_dir: Path) -> dict[str, dict]:
    """Every answer already written in the run folder, by any process of any earlier attempt."""
    done: dict[str, dict] = {}
    for path in prediction_files(run_dir):
        for key, row in read_predictions(path).items():
            if key in done:
                raise EvalRunError(f"{path}: id {row.get('id')!r} is answered in two prediction files")
            done[key] = row
    return done


class PredictionWriter:
    """Appends a video's answers, a line each, and syncs them to disk once: a kill loses at most the video being
    written (a cut last line is repaired on resume)."""

    def __init__(self, path: Path):
        read_predictions(path, repair=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def write(self, rows: list[dict]) -> None:
        self._file.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def merge_predictions(run_dir: Path, records: list[QARecord]) -> dict[str, dict]:
    """Every answer of the folder in one ``predictions.jsonl``, in the order of ``records`` (the benchmark's
    questions of the file; answers to other ids, if any, after them in the order read): none is ever dropped.
    The per-process files are removed once merged."""
    done = done_predictions(run_dir)
    order = [str(r.id) for r in records if str(r.id) in done]
    known = set(order)
    order += [k for k in done if k not in known]
    atomic_write_text(run_dir / PREDICTIONS, "".join(json.dumps(done[k], ensure_ascii=False) + "\n" for k in order))
    for path in run_dir.glob("predictions.rank*.jsonl"):
        path.unlink()
    return {k: done[k] for k in order}


# ---------------------------------------------------------------------- what ran
def file_checksums(path: Path | None, known: dict | None = None, clock=time.time) -> dict[str, dict]:
    """``{relative path: {size, mtime_ns, ctime_ns, inode, sha256, settled}}`` of a file or every file under a
    folder. A checksum in ``known`` is reused for a file whose signature is unchanged and whose times were settled
    when it was read (``utils.fileio.settled``: a resumed run of a 7B model does not read 15 GB again, and a file
    replaced by another of the same size and modification time is read anew); ``clock``: the wall clock."""
    if path is None:
        return {}
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    out = {}
    for file in files:
        name = file.name if file == path else str(file.relative_to(path))
        stat = file.stat()
        signature = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns,
                     "inode": stat.st_ino}
        previous = (known or {}).get(name) or {}
        if previous.get("settled") and all(previous.get(k) == v for k, v in signature.items()):
            out[name] = previous
            continue
        read_at = clock()
        out[name] = {**signature, "sha256": sha256_of(file), "settled": settled(stat, read_at)}
    return out


def _versions() -> dict[str, str]:
    import torch
    import transformers

    from vlm3r import __version__

    return {"vlm3r": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def run_record(options: RunOptions, model, qa_sha256: str, world: int, known: dict | None) -> dict:
    """run.json: every setting and file that decides the answers."""
    files = model.files
    previous = (known or {}).get("model_files") or {}
    config = model.config

    def part(name: str, path: Path | None) -> dict | None:
        if path is None:
            return None
        return {"path": str(path), "files": file_checksums(path, (previous.get(name) or {}).get("files"))}

    return {
        "command": sys.argv, "bench": options.bench, "qa": str(options.qa), "qa_sha256": qa_sha256,
        "videos": str(options.videos), "limit": options.limit, "processes": world,
        "model_files": {"model": part("model", files.model),
                        "base": part("base", files.base if files.base != files.model else None),
                        "cut3r": part("cut3r", files.cut3r)},
        "dtype": options.dtype, "device": options.device, "frames": options.frames, "batch_size": options.batch_size,
        "max_new_tokens": options.max_new_tokens,
        "config": {"fusion": config.fusion, "spatial_tower_select_feature": config.spatial_tower_select_feature,
                   "pool_mode": config.pool_mode, "cut3r_image_size": config.cut3r_image_size,
                   "fusion_heads": config.fusion_heads, "vision": config.to_dict()["vision"],
                   "llm": config.to_dict()["llm"], "cut3r": config.to_dict()["cut3r"]},
        "versions": _versions(), "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _identity(record: dict) -> dict:
    out = {k: record.get(k) for k in IDENTITY_FIELDS}
    out["model_files"] = {part: None if value is None else {name: f["sha256"] for name, f in value["files"].items()}
                          for part, value in (record.get("model_files") or {}).items()}
    return out


def check_same_run(previous: dict, current: dict, path: Path) -> None:
    old, new = _identity(previous), _identity(current)
    changed = [k for k in IDENTITY_FIELDS if old.get(k) != new.get(k)]
    if changed:
        raise EvalRunError(f"{path}: this folder holds predictions made with other settings ({', '.join(changed)} "
                           "differ): use another --out, or remove the folder to start again")


# ---------------------------------------------------------------------- the run
@dataclass
class RunOptions:
    bench: str
    qa: Path
    videos: Path
    out: Path
    limit: int | None = None
    frames: int | None = None
    batch_size: int = 1
    max_new_tokens: int = MAX_NEW_TOKENS
    dtype: str = "bf16"
    device: str = "cpu"


@dataclass
class RunResult:
    run_dir: Path
    report: ScoreReport | None  # None on the processes other than 0
    answered: int  # questions answered by this run (this process)
    failures: dict[str, str] = field(default_factory=dict)  # question id -> why it has no answer
    held: int = 0  # answers in predictions.jsonl (process 0): the scored ones and any kept beyond --limit
    scope: str | None = None  # what the report scored, when not every question of the file or answer of the folder


def select_questions(options: RunOptions, benchmark: Benchmark) -> tuple[list[QARecord], list[QARecord], str]:
    """(the questions to answer and score: the benchmark's first ``--limit`` of the file, all of the file's
    benchmark questions: the order of predictions.jsonl, the file's SHA-256)."""
    records = load_questions(options.qa)
    every, _ = split_questions(benchmark, records)
    if not every:
        raise EvalRunError(f"{options.qa}: no {benchmark.name} questions in it")
    chosen = every
    if options.limit is not None:
        if options.limit < 1:
            raise EvalRunError(f"--limit: at least 1, got {options.limit}")
        chosen = every[:options.limit]
    return chosen, every, sha256_of(options.qa)


def scope_note(scored: int, total: int, held: int, limit: int | None, benchmark: str) -> str | None:
    """What a report scored, when it is not every question of the file or not every answer of the folder."""
    if scored == total and held == scored:
        return None
    limited = f" (--limit {limit})" if limit is not None else ""
    kept = f"; {PREDICTIONS} holds {held} answers, all kept" if held != scored else ""
    return f"Scored the first {scored} of the file's {total} {benchmark} questions{limited}{kept}."


def answer_videos(pipeline, groups: list[VideoQuestions], done: dict, writer: PredictionWriter,
                  options: RunOptions, progress: Callable[[int, int], None] | None = None) -> tuple[int, dict]:
    """Answer every question of ``groups`` not in ``done``, video by video; returns (answers written, failures).
    ``progress(videos, questions)`` is called after each video with what it added."""
    answered, failures = 0, {}
    for group in groups:
        todo = [q for q in group.questions if str(q.id) not in done]
        if todo:
            try:
                answers = pipeline.ask_video(group.video, [question_text(q) for q in todo], options.max_new_tokens,
                                             options.batch_size)
                rows = [{"id": q.id, "prediction": a} for q, a in zip(todo, answers)]
            except VideoError as exc:  # decoding failed after the header was read
                rows = [{"id": q.id, "prediction": "", "error": str(exc)} for q in todo]
                failures.update({str(q.id): str(exc) for q in todo})
            writer.write(rows)
            answered += len(rows)
        if progress:
            progress(1, len(todo))
    return answered, failures


def write_results(run_dir: Path, benchmark: Benchmark, records: list[QARecord], predictions: dict[str, dict],
                  title: str, note: str | None = None) -> ScoreReport:
    """scores.json and report.md of ``records`` (answers in ``predictions`` to other questions are not scored):
    the run beside the paper's VLM-3R row and the chance baselines; ``note`` (what was scored) ends the report."""
    scored = {str(r.id) for r in records}
    predictions = {k: row for k, row in predictions.items() if k in scored}
    texts = {k: row["prediction"] for k, row in predictions.items()}
    report = score(benchmark, records, texts)
    write_scores(run_dir, report)
    failed = {k: row["error"] for k, row in predictions.items() if row.get("error")}
    baselines = {"paper VLM-3R": paper_report(benchmark), **chance_rows(benchmark, records)}
    path = write_report(run_dir, report, baselines, title, label="this run")
    if note:
        with path.open("a", encoding="utf-8") as f:
            f.write(f"\n{note}\n")
    if failed:
        lines = [f"\n## {len(failed)} questions without an answer (scored as wrong)\n"]
        lines += [f"- question {k}: {reason}" for k, reason in sorted(failed.items())[:100]]
        with path.open("a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return report


def _broadcast_error(message: str | None, world: int) -> None:
    """Process 0's verdict to every process (so that none waits forever for one that stopped); raise if any."""
    if world > 1:
        from accelerate.utils import broadcast_object_list

        message = broadcast_object_list([message])[0]
    if message:
        raise EvalRunError(message)


def run_benchmark(options: RunOptions, model: Path | str, cut3r: Path | str | None = None,
                  base: Path | str | None = None, vision_tower: Path | str | None = None,
                  progress_factory: Callable[[int, int, int], Callable[[int, int], None]] | None = None) -> RunResult:
    """Answer, merge, score and report a benchmark (see the module docstring).

    Args:
        options: what to run and where to write.
        model, cut3r, base, vision_tower: the model's files, as for ``Vlm3rModel.from_pretrained``.
        progress_factory: called once on process 0 with (videos, questions, questions already answered); the
            callable it returns gets (videos, questions) after each video.
    """
    run_dir = options.out
    with contextlib.ExitStack() as lock:
        # One lock per run: process 0 (RANK 0 under a launcher) holds it for all the run's processes, taken before
        # torch is imported, so that a second run is refused at once (its other processes learn of it below).
        verdict = None
        if int(os.environ.get(RANK_VARIABLE, "0")) == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            try:
                lock.enter_context(run_lock(run_dir))
            except EvalRunError as exc:
                if int(os.environ.get(WORLD_VARIABLE, "1")) == 1:
                    raise
                verdict = str(exc)
        from accelerate import PartialState

        from vlm3r.eval.benchmarks import get_benchmark
        from vlm3r.model.pipeline import Vlm3rPipeline
        from vlm3r.utils.devices import check_device, torch_dtype

        state = PartialState(cpu=options.device == "cpu")
        rank, world = state.process_index, state.num_processes
        _broadcast_error(verdict, world)
        benchmark = get_benchmark(options.bench)
        torch_dtype(options.dtype)  # both checked before any question or video is read
        check_device(options.device)
        device = str(state.device) if world > 1 and options.device != "cpu" else options.device
        records, every, qa_sha256 = select_questions(options, benchmark)
        groups = group_by_video(records, options.videos)
        check_videos(groups)
        pipeline = Vlm3rPipeline.from_options(model, cut3r, base, vision_tower, dtype=options.dtype, device=device,
                                              frames=options.frames)
        options.frames = pipeline.num_frames
        if state.is_main_process:
            previous = (read_json(run_dir / RUN_FILE, EvalRunError, dict, "the earlier run's record")
                        if (run_dir / RUN_FILE).is_file() else None)
            record = run_record(options, pipeline.model, qa_sha256, world, previous)
            try:
                if previous is not None:
                    check_same_run(previous, record, run_dir / RUN_FILE)
                atomic_write_text(run_dir / RUN_FILE, json.dumps(record, indent=1))
            except EvalRunError as exc:
                verdict = str(exc)
        _broadcast_error(verdict, world)
        done = done_predictions(run_dir)
        state.wait_for_everyone()  # every process has read what is done before any appends
        mine = shard_of(groups, rank, world)
        progress = None
        if progress_factory is not None and state.is_main_process:
            progress = progress_factory(len(mine), sum(len(g.questions) for g in mine),
                                        sum(1 for g in mine for q in g.questions if str(q.id) in done))
        writer = PredictionWriter(run_dir / (PREDICTIONS if world == 1 else f"predictions.rank{rank}.jsonl"))
        try:
            answered, failures = answer_videos(pipeline, mine, done, writer, options, progress)
        finally:
            writer.close()
        state.wait_for_everyone()
        if not state.is_main_process:
            return RunResult(run_dir, None, answered, failures)
        predictions = merge_predictions(run_dir, every)  # every answer of the folder kept, the file's order
        missing = [str(r.id) for r in records if str(r.id) not in predictions]
        if missing:
            raise EvalRunError(f"{run_dir}: {len(missing)} questions have no prediction, e.g. ids {missing[:5]}")
        note = scope_note(len(records), len(every), len(predictions), options.limit, benchmark.name)
        report = write_results(run_dir, benchmark, records, predictions, f"{benchmark.name}: {Path(model).name}",
                               note)
        return RunResult(run_dir, report, answered, failures, len(predictions), note)


__all__ = ["EvalRunError", "PredictionWriter", "RunOptions", "RunResult", "answer_videos", "check_same_run",
           "check_videos", "done_predictions", "file_checksums", "group_by_video", "merge_predictions",
           "read_predictions", "run_benchmark", "run_lock", "run_record", "scope_note", "select_questions",
           "video_of", "write_results"]
