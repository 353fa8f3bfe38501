"""The model behind the server: one worker thread owns the pipeline (one model, used by one thread at a time),
and requests wait in a queue. Each time the worker takes work it drains the queue and answers questions that
share a video and a token limit in one batch, continuing from the video's cached prefix (greedy and sampled
questions together: each sampled one draws with its own generator); streamed answers run one at a time. A
request that fails (a video that does not decode) fails alone: nothing of it is cached. A cancelled request (its
client gone) is skipped if it is still waiting, and a stream stops at its next token.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from vlm3r.errors import Vlm3rError
from vlm3r.model.pipeline import Answer, Vlm3rPipeline
from vlm3r.model.sampling import Sampling

log = logging.getLogger(__name__)

MAX_BATCH = 16  # questions of one video answered together
CLOSE_WAIT_S = 30.0  # seconds close() waits for the worker to finish what it is doing
STOP = object()


class EngineStopped(Vlm3rError):
    """An answer stopped before its end (its client went away, or the server is stopping)."""


@dataclass
class Job:
    video: Path | tuple[Path, ...]  # a video, or an image sequence (the pipeline takes either)
    question: str
    max_tokens: int
    loop: asyncio.AbstractEventLoop
    sampling: Sampling | None = None  # None: greedy
    future: asyncio.Future | None = None  # an answer
    pieces: asyncio.Queue | None = None  # a stream: text pieces, then the Answer (or an exception)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Nobody waits for this answer any more: the worker skips it or stops generating it."""
        self.cancelled.set()

    def finish(self, result=None, error: BaseException | None = None) -> None:
        def done():
            if self.future is not None and not self.future.done():
                self.future.set_exception(error) if error else self.future.set_result(result)
        self._call(done)

    def send(self, item) -> None:
        self._call(self.pieces.put_nowait, item)

    def _call(self, function, *args) -> None:
        try:
            self.loop.call_soon_threadsafe(function, *args)
        except RuntimeError:  # the server's loop has closed: nobody waits for this any more
            pass


@dataclass
class EngineStats:
    requests: int = 0
    batches: int = 0
    batched_questions: int = 0
    failures: int = 0
    largest_batch: int = 0
    cancelled: int = 0  # requests skipped or streams stopped because their client went away


class Engine:
    def __init__(self, pipeline: Vlm3rPipeline, max_batch: int = MAX_BATCH):
        self.pipeline, self.max_batch = pipeline, max_batch
        self.stats = EngineStats()
        self._closing = threading.Event()
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="vlm3r-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ from the server
    async def answer(self, video: Path | tuple[Path, ...], question: str, max_tokens: int,
                     sampling: Sampling | None = None) -> Answer:
        loop = asyncio.get_running_loop()
        job = Job(video, question, max_tokens, loop, sampling, future=loop.create_future())
        self._queue.put(job)
        try:
            return await job.future
        except asyncio.CancelledError:
            job.cancel()
            raise

    def stream(self, video: Path | tuple[Path, ...], question: str, max_tokens: int,
               sampling: Sampling | None = None) -> Job:
        """A job whose ``pieces`` queue receives the answer's text pieces, then its ``Answer`` (or the exception
        that ended it); ``cancel()`` it when nobody reads them any more."""
        loop = asyncio.get_running_loop()
        job = Job(video, question, max_tokens, loop, sampling, pieces=asyncio.Queue())
        self._queue.put(job)
        return job

    def close(self) -> None:
        """Stop the worker: a stream in progress stops at its next token; waits ``CLOSE_WAIT_S`` at most."""
        self._closing.set()
        self._queue.put(STOP)
        self._thread.join(timeout=CLOSE_WAIT_S)

    def snapshot(self) -> dict:
        """The pipeline's counts (``Vlm3rPipeline.stats``) and the engine's: what ``/health`` reports."""
        return {**self.pipeline.stats(), "queued": self._queue.qsize(), "requests": self.stats.requests,
                "batches": self.stats.batches,
                "largest_batch": self.stats.largest_batch, "failures": self.stats.failures,
                "cancelled": self.stats.cancelled}

    # ------------------------------------------------------------------ the worker thread
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is STOP:
                return
            jobs = [first]
            while len(jobs) < 4 * self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is STOP:
                    self._queue.put(STOP)
                    break
                jobs.append(job)
            groups: dict[tuple, list[Job]] = defaultdict(list)
            for job in jobs:
                self.stats.requests += 1
                if job.cancelled.is_set():
                    self.stats.cancelled += 1
                elif self._closing.is_set():  # still waiting when the server began to stop
                    stopped = EngineStopped("the server is stopping")
                    job.send(stopped) if job.pieces is not None else job.finish(error=stopped)
                elif job.pieces is not None:
                    self._stream(job)
                else:
                    groups[(job.video, job.max_tokens)].append(job)
            for (video, max_tokens), members in groups.items():
                for start in range(0, len(members), self.max_batch):
                    self._answer(video, max_tokens, members[start:start + self.max_batch])

    def _answer(self, video: Path, max_tokens: int, jobs: list[Job]) -> None:
        waiting = [j for j in jobs if not j.cancelled.is_set()]  # cancelled while earlier work ran
        self.stats.cancelled += len(jobs) - len(waiting)
        jobs = waiting
        if not jobs:
            return
        try:
            answers = self.pipeline.answer_video(video, [j.question for j in jobs], max_tokens, len(jobs),
                                                 [j.sampling for j in jobs])
        except Exception as exc:  # each waiting request gets the error; the worker goes on
            self.stats.failures += len(jobs)
            log.warning("%s: %s", video, exc)
            for job in jobs:
                job.finish(error=exc)
            return
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(jobs))
        for job, answer in zip(jobs, answers):
            job.finish(answer)

    def _stream(self, job: Job) -> None:
        pieces = self.pipeline.stream_video(job.video, job.question, job.max_tokens, job.sampling)
        try:
            while True:
                if job.cancelled.is_set() or self._closing.is_set():
                    pieces.close()
                    self.stats.cancelled += 1
                    why = "its client went away" if job.cancelled.is_set() else "the server is stopping"
                    log.info("%s: a streamed answer stopped: %s", job.video, why)
                    job.send(EngineStopped(f"the answer was stopped: {why}"))
                    return
                job.send(next(pieces))
        except StopIteration as end:
            job.send(end.value)
        except Exception as exc:  # the stream ends with the error; the worker goes on
            self.stats.failures += 1
            log.warning("%s: %s", job.video, exc)
            job.send(exc)
