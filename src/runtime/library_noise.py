"""Orbax and tensorstore report one failed write many times over; the failure itself reaches
the Checkpointer, which reports it once (one line for a full disk). `install` drops the echoes:

- orbax logs each failure of its writer threads at ERROR, with a traceback, then raises it;
- the parallel writes of a failed save that also fail are never awaited, so asyncio logs
  "Task (or _GatheringFuture) exception was never retrieved" for each;
- writes still running when the save gave up complete later and try to wake orbax's event
  loop, already closed: tensorstore reports "Event loop is closed" as unraisable exceptions.

Background writers of other libraries (TensorBoard's event thread) die on a full or read-only
disk with a traceback; that becomes one warning line naming the thread and the cause.
HYDRA_FULL_ERROR=1 keeps all of them, as it keeps tracebacks.
"""

import logging
import os
import sys
import threading

from hydralearn.runtime.storage import storage_cause

logger = logging.getLogger(__name__)


def _verbose() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def _orbax_record(record: logging.LogRecord) -> bool:
    return record.levelno < logging.ERROR or _verbose()


def _asyncio_record(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    # "Task ...", "Future ..." or "_GatheringFuture exception was never retrieved"
    orphan = "exception was never retrieved" in message.partition("\n")[0] and "orbax" in message
    return not orphan or _verbose()


_next_hook = sys.__unraisablehook__  # the hook installed before ours gets everything else
_next_thread_hook = threading.__excepthook__


def _thread_exception(args) -> None:
    cause = storage_cause(args.exc_value) if args.exc_value is not None else None
    if cause is None or _verbose():
        _next_thread_hook(args)
        return
    name = args.thread.name if args.thread is not None else "a thread"
    logger.warning("%s stopped: %s", name, cause)


def _unraisable(unraisable) -> None:
    error = unraisable.exc_value
    if isinstance(error, RuntimeError) and str(error) == "Event loop is closed" and not _verbose():
        return
    _next_hook(unraisable)


def install() -> None:
    """Idempotent; process-wide (loggers and sys.unraisablehook)."""
    global _next_hook, _next_thread_hook
    for name, keep in (("absl", _orbax_record), ("asyncio", _asyncio_record)):
        if keep not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(keep)
    if sys.unraisablehook is not _unraisable:
        _next_hook, sys.unraisablehook = sys.unraisablehook, _unraisable
    if threading.excepthook is not _thread_exception:
        _next_thread_hook, threading.excepthook = threading.excepthook, _thread_exception
