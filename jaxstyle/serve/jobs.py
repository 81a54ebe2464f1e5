"""The web page's jobs: their state (:class:`Job`) and the one background thread that runs them (:class:`Worker`).

Jobs run one at a time (they are CPU bound), in order; every queued or running job and the last
``keep`` finished ones are kept. A job's task returns float32[H,W,3] in [0,1], stored as PNG bytes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxstyle.errors import JaxstyleError, one_line
from jaxstyle.io import images

log = logging.getLogger("jaxstyle.serve")


@dataclasses.dataclass
class Job:
    """One job's state, read by the API while the worker thread updates it."""

    id: str
    task: Callable[[Job], np.ndarray] | None
    state: str = "queued"
    progress: float = 0.0
    message: str = "waiting for the worker"
    png: bytes | None = None
    seconds: float | None = None  # the run time (task and PNG encoding), set before the final state
    delivered: bool = False  # the client has its outcome (the result, or the error's status)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"state": self.state, "progress": round(self.progress, 4), "message": self.message}
        if self.seconds is not None:
            status["seconds"] = self.seconds
        return status


class QueueFullError(Exception):
    """More than ``max_queued`` jobs are waiting; ``retry_after``: seconds until one is likely free."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


#: Retry-After (s) when the queue is full and no job has finished yet to time.
DEFAULT_RETRY_AFTER_S = 5
MAX_RETRY_AFTER_S = 300


class Worker:
    """Runs jobs one at a time, in order, in one background thread (started with the first job).

    Keeps every queued or running job and the last ``keep`` finished ones; older results are dropped.
    """

    def __init__(self, keep: int, max_queued: int) -> None:
        self._keep, self._max_queued = keep, max_queued
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._job_seconds: float | None = None  # moving average of finished jobs' run time

    def retry_after(self, waiting: int) -> int:
        """Seconds until a queue slot is likely free: the average job time (once known) times the jobs
        ahead, within 1..:data:`MAX_RETRY_AFTER_S`."""
        if self._job_seconds is None:
            return DEFAULT_RETRY_AFTER_S
        return int(min(MAX_RETRY_AFTER_S, max(1, math.ceil(self._job_seconds * max(1, waiting)))))

    def submit(self, task: Callable[[Job], np.ndarray]) -> Job:
        """Queue ``task`` (called with its :class:`Job` in the worker thread; returns the image)."""
        with self._lock:
            waiting = sum(job.state == "queued" for job in self._jobs.values())
            if waiting >= self._max_queued:
                retry = self.retry_after(waiting)
                raise QueueFullError(f"busy: {waiting} jobs are waiting; try again in {retry} s", retry)
            job = Job(uuid.uuid4().hex, task)
            self._jobs[job.id] = job
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="jaxstyle-worker", daemon=True)
                self._thread.start()
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def close(self, timeout: float = 5.0) -> None:
        """Stop once the jobs queued so far are done; waits up to ``timeout`` s (the thread is a daemon,
        so an unfinished job does not keep the process alive)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            self._run(job)

    def _run(self, job: Job) -> None:
        job.state, job.message = "running", "working"
        started = time.perf_counter()
        png, message = None, "done"
        try:
            assert job.task is not None
            png = images.encode_png(job.task(job))
        except JaxstyleError as err:
            message = one_line(err)
        except Exception as err:  # a bug: log it, tell the page something short
            log.exception("job %s failed", job.id)
            message = f"internal error ({type(err).__name__}): {one_line(err)}"[:300]
        finally:
            job.task = None  # frees the decoded images
            seconds = time.perf_counter() - started
            # The time is in place before the state says finished, so a poll never sees one without it.
            job.seconds = round(seconds, 3)
            if png is not None:
                job.png, job.progress = png, 1.0
            job.message, job.state = message, "done" if png is not None else "error"
            self._job_seconds = seconds if self._job_seconds is None else 0.7 * self._job_seconds + 0.3 * seconds
            self._prune()

    def _prune(self) -> None:
        with self._lock:
            finished = [key for key, job in self._jobs.items() if job.state in ("done", "error")]
            # Past ``keep``, drop what the clients already have first, then the oldest.
            finished.sort(key=lambda key: not self._jobs[key].delivered)  # stable: oldest first in each group
            for key in finished[: max(0, len(finished) - self._keep)]:
                del self._jobs[key]
