"""SIGTERM (what schedulers send before preempting a job) or Ctrl-C -> finish the step, save, stop.

The handler only sets a flag: the loop checks it after each step, so the checkpoint holds a
consistent state and the next start resumes at exactly the step where this one stopped.
It is installed for the whole run, compilation included (runtime/run.py train_run): an
interrupt raised inside XLA's compiler or a JAX callback crashed the process or was swallowed
there. A Ctrl-C before the first step stops once compiling is done (nothing to save yet).
A second SIGTERM while saving is ignored: the save is what the job was given time for.
A second Ctrl-C exits at once, without saving (a write in flight is left uncommitted, and the
next start removes it).

With several processes every one must save the same step: SIGTERM is then left to JAX's
preemption notifier (installed by jax.distributed.initialize), which tells every process and
agrees on the step after the furthest one (`multihost_utils.reached_preemption_sync_point`);
Ctrl-C is passed on to it as a SIGTERM of this process.
"""

import logging
import os
import signal
import sys
import threading

from hydralearn.exit_codes import INTERRUPTED_EXIT

logger = logging.getLogger(__name__)

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preemption:
    def __init__(self, *, multi_process: bool = False):
        self.multi_process = multi_process
        self._requested = threading.Event()
        self.interrupted = False  # the stop came from Ctrl-C (SIGINT), not from a scheduler
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "Preemption":
        if threading.current_thread() is threading.main_thread():  # signals need the main thread
            signals = (signal.SIGINT,) if self.multi_process else _SIGNALS
            self._previous = {s: signal.signal(s, self._handle) for s in signals}
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    @property
    def requested(self) -> bool:
        """A stop was asked of this process."""
        return self._requested.is_set()

    def raise_if_interrupted(self) -> None:
        """KeyboardInterrupt if Ctrl-C came (one process): at a safe point, with no progress
        to save, or none left. With several processes a stop is agreed after a step instead."""
        if self.interrupted and not self.multi_process:
            raise KeyboardInterrupt

    def stop_after(self, steps: int) -> bool:
        """Whether to save and stop now, `steps` steps into this attempt; with several processes
        every process gets the same answer. Call it after every step, on every process."""
        if self.multi_process:
            from jax.experimental import multihost_utils

            # Counted from this attempt's start, as JAX's sync manager counts from 0: a notice
            # that came while compiling then stops after the first step, on a resume too.
            return multihost_utils.reached_preemption_sync_point(steps)
        return self._requested.is_set()

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT and self._requested.is_set():
            print("hydralearn: error: interrupted again: exiting at once, without saving",
                  file=sys.stderr, flush=True)
            os._exit(INTERRUPTED_EXIT)  # not an exception: it could be swallowed mid-save
        if not self._requested.is_set():
            self.interrupted = signum == signal.SIGINT
            if self.interrupted:
                logger.warning("Ctrl-C received: saving a checkpoint after the current step, then "
                               "exiting (before the first step: once compiling is done, with nothing "
                               "to save); Ctrl-C again exits at once")
            else:
                logger.warning("SIGTERM received: saving a checkpoint after the current step, then exiting")
        self._requested.set()
        if self.multi_process:
            os.kill(os.getpid(), signal.SIGTERM)  # JAX's notifier tells the other processes
