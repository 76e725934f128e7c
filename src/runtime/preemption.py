"""SIGTERM (what schedulers send before preempting a job) -> finish the step, save, exit 0.

The handler only sets a flag: the loop checks it after each step, so the checkpoint holds a
consistent state and the requeued job resumes at exactly the step where this one stopped.
A second SIGTERM while saving is ignored: the save is what the job was given time for.
"""

import logging
import signal
import threading

logger = logging.getLogger(__name__)


class Preemption:
    def __init__(self):
        self._requested = threading.Event()
        self._previous = None

    def __enter__(self) -> "Preemption":
        if threading.current_thread() is threading.main_thread():  # signals need the main thread
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def _handle(self, signum, frame) -> None:
        if not self._requested.is_set():
            logger.warning("SIGTERM received: saving a checkpoint after the current step, then exiting")
        self._requested.set()
