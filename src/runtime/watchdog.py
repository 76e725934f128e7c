"""Watchdog: if no step completes within `timeout_s`, log every thread's stack and exit.

A hung collective, a stuck filesystem or a deadlocked input thread otherwise idles a whole
allocation forever; exiting non-zero lets the scheduler restart the job, which then resumes
from its last checkpoint. The timer runs in its own thread: most hangs (device waits, I/O)
release the GIL, so it keeps running while the main thread is stuck.
"""

import logging
import os
import sys
import threading
import time
import traceback

from hydralearn.exit_codes import WATCHDOG_EXIT

logger = logging.getLogger(__name__)


class Watchdog:
    """`beat()` after every completed step; the first beat arms it (compilation excluded)."""

    def __init__(self, *, timeout_s: float):
        self.timeout_s = timeout_s
        self._last: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="hydralearn-watchdog", daemon=True)

    def __enter__(self) -> "Watchdog":
        if self.timeout_s > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def beat(self) -> None:
        self._last = time.monotonic()

    def _watch(self) -> None:
        while not self._stop.wait(min(self.timeout_s / 4, 5.0)):
            if self._last is not None and time.monotonic() - self._last > self.timeout_s:
                self._fire()

    def _fire(self) -> None:
        logger.critical("watchdog: no training step completed in %.0f s; stacks of all threads:\n%s",
                        self.timeout_s, all_stacks())
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(WATCHDOG_EXIT)  # not sys.exit: the main thread is the one that is stuck


def all_stacks() -> str:
    names = {t.ident: t.name for t in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        parts.append(f"--- thread {names.get(ident, '?')} ({ident}) ---\n"
                     + "".join(traceback.format_stack(frame)))
    return "\n".join(parts)
