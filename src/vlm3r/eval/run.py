"""A whole benchmark in one run: questions grouped by video, each video decoded, encoded and prefilled once,
predictions appended as they come (an interrupted run resumes where it stopped), then scored and reported. This
module orchestrates; the parts have their own homes.

Layout of a run folder:
- ``predictions.jsonl``: one ``{"id", "prediction"}`` line per question (``"error"`` too when its video failed:
  scored as wrong and listed in the report), in the question file's order once the run is complete;
  while it runs, every process appends to its own ``predictions.rank<k>.jsonl`` (one process: to
  ``predictions.jsonl``), flushed line by line (``eval.predictions``);
- ``run.json``: what ran: the model's files with their checksums, dtype, device, frames, the config fields that
  change the answers, versions; a rerun with other settings into the same folder is refused (``eval.provenance``);
- ``scores.json``, ``report.md`` (with the chance baselines, the count of empty answers, and the paper's VLM-3R
  row when the question file is the public benchmark: ``eval.public``), ``tasks.png``,
  ``mra.png``: the questions of this run (the first ``--limit`` of the file); answers the folder holds beyond them
  (from an earlier run with a larger limit) are kept, never deleted, and the report says what it scored
  (``eval.files.write_results``, ``eval.report``);
- ``.run.lock``: an exclusive ``flock`` held by the run (by process 0 under a launcher) while it writes: a second
  run into the folder is refused at once. The system releases it when the process ends, however it ends, so a
  killed run leaves only the file (holding its process id), which locks nothing.

Questions are read, grouped by video and every video checked in ``eval.loading``. Data parallel under
``torchrun`` or ``accelerate launch``: videos are dealt to the processes in turn (``utils.parallel.shard_of``);
process 0 merges the predictions and scores them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from vlm3r.errors import EvalRunError
from vlm3r.eval.files import checksum_note
from vlm3r.eval.loading import VideoQuestions, check_videos, group_by_video
from vlm3r.eval.predictions import (PREDICTIONS, PredictionWriter, done_predictions, empty_answers,
                                    merge_predictions, predictions_path)
from vlm3r.eval.report import empty_answers_note
from vlm3r.eval.provenance import record_run
from vlm3r.eval.suites import Suite, get_suite
from vlm3r.utils.fileio import sha256_of
from vlm3r.utils.devices import AUTO
from vlm3r.utils.parallel import shard_of
from vlm3r.utils.images import ImageError
from vlm3r.utils.video import VideoError

log = logging.getLogger(__name__)

LOCK_FILE = ".run.lock"
RANK_VARIABLE, WORLD_VARIABLE = "RANK", "WORLD_SIZE"  # a process's rank and the process count, as launchers set them


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


@dataclass(frozen=True)
class RunOptions:
    """What to run and where to write (``vlm3r eval run``'s options); ``frames`` None: the model's own;
    ``max_new_tokens`` None: the benchmark's answer length; ``prompt`` None: the benchmark's default prompt."""

    bench: str
    qa: Path
    videos: Path
    out: Path
    limit: int | None = None
    frames: int | None = None
    batch_size: int = 1
    max_new_tokens: int | None = None
    dtype: str = AUTO  # the best for the device (utils.devices.placement); run.json records the choice
    device: str = AUTO
    prompt: str | None = None


@dataclass
class RunResult:
    """What a run did, for the command to print."""

    run_dir: Path
    report: object | None  # ScoreReport or Qa3dReport; None on the processes other than 0 and for a split
    # without public answers
    answered: int  # questions answered by this run (this process)
    failures: dict[str, str] = field(default_factory=dict)  # question id -> why it has no answer
    held: int = 0  # answers in predictions.jsonl (process 0): the scored ones and any kept beyond --limit
    scope: str | None = None  # what the report scored, when not every question of the file or answer of the folder
    empty: str | None = None  # how many scored answers are empty text (process 0; the report's line)
    unscored: str | None = None  # process 0, when the questions have no public answers: why nothing was scored


def select_questions(options: RunOptions, suite: Suite) -> tuple[list, list, str]:
    """(the questions to answer and score: the benchmark's first ``--limit`` of the file, all of the file's
    benchmark questions: the order of predictions.jsonl, the file's SHA-256)."""
    every = suite.load(options.qa)
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
                  options: RunOptions, suite: Suite,
                  progress: Callable[[int, int], None] | None = None) -> tuple[int, dict]:
    """Answer every question of ``groups`` not in ``done``, video by video, in ``suite``'s prompt; returns
    (answers written, failures). ``progress(videos, questions)`` is called after each video with what it added."""
    answered, failures = 0, {}
    for group in groups:
        todo = [q for q in group.questions if str(q.id) not in done]
        if todo:
            try:
                # an image sequence (a tuple of files) is asked in the reference's image layout
                answers = pipeline.ask_video(group.video, [suite.text(q) for q in todo], options.max_new_tokens,
                                             options.batch_size, suite.template)
                rows = [{"id": q.id, "prediction": a} for q, a in zip(todo, answers)]
            except (VideoError, ImageError) as exc:  # decoding failed after the header was read
                rows = [{"id": q.id, "prediction": "", "error": str(exc)} for q in todo]
                failures.update({str(q.id): str(exc) for q in todo})
            writer.write(rows)
            answered += len(rows)
        if progress:
            progress(1, len(todo))
    return answered, failures


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

        from vlm3r.model.pipeline import Vlm3rPipeline
        from vlm3r.utils.devices import placement

        chosen = placement(options.device, options.dtype)  # auto resolved; both checked before any file is read
        options = replace(options, device=chosen.device, dtype=chosen.dtype)
        state = PartialState(cpu=options.device == "cpu")
        rank, world = state.process_index, state.num_processes
        _broadcast_error(verdict, world)
        suite = get_suite(options.bench, options.prompt)
        device = str(state.device) if world > 1 and options.device != "cpu" else options.device
        records, every, qa_sha256 = select_questions(options, suite)
        groups = group_by_video(records, options.videos, suite.video)
        check_videos(groups)
        pipeline = Vlm3rPipeline.from_options(model, cut3r, base, vision_tower, dtype=options.dtype, device=device,
                                              frames=options.frames)
        # what ran, in a copy (the caller's options stay as given): the benchmark's name, the model's frames, the
        # answer length and the prompt
        ran = replace(options, bench=suite.name, frames=pipeline.num_frames, prompt=suite.prompt,
                      max_new_tokens=options.max_new_tokens or suite.max_new_tokens)
        if state.is_main_process:
            try:
                record_run(run_dir, ran, pipeline.model, qa_sha256, world)
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
        writer = PredictionWriter(predictions_path(run_dir, rank, world))
        try:
            answered, failures = answer_videos(pipeline, mine, done, writer, ran, suite, progress)
        finally:
            writer.close()
        state.wait_for_everyone()
        if not state.is_main_process:
            return RunResult(run_dir, None, answered, failures)
        predictions = merge_predictions(run_dir, every)  # every answer of the folder kept, the file's order
        missing = [str(r.id) for r in records if str(r.id) not in predictions]
        if missing:
            raise EvalRunError(f"{run_dir}: {len(missing)} questions have no prediction, e.g. ids {missing[:5]}")
        note = scope_note(len(records), len(every), len(predictions), options.limit, suite.name)
        report = suite.write(run_dir, records, every, predictions, f"{suite.name}: {Path(model).name}",
                             "\n\n".join(filter(None, (note, checksum_note(options.qa)))))
        empty = empty_answers({str(r.id): predictions[str(r.id)] for r in records})
        unscored = None if report is not None else (f"answered all {len(records)} questions, scored none: the "
                                                    "answers of this split are not public (report.md says so)")
        return RunResult(run_dir, report, answered, failures, len(predictions), note,
                         empty_answers_note(empty, len(records)), unscored)


__all__ = ["RunOptions", "RunResult", "answer_videos", "run_benchmark", "run_lock", "scope_note",
           "select_questions"]
