"""Echoes of one storage failure are dropped; anything else still reaches the usual hooks."""

import errno
import logging
import os
import threading

from hydralearn.runtime import library_noise


def _run_thread(error: BaseException) -> None:
    def fail():
        raise error
    thread = threading.Thread(target=fail, name="events-writer")
    thread.start()
    thread.join()


def test_a_writer_thread_dying_on_a_full_disk_is_one_warning(caplog):
    previous, forwarded = threading.excepthook, []
    threading.excepthook = forwarded.append  # stands for the hook installed before ours
    library_noise.install()
    try:
        with caplog.at_level(logging.WARNING):
            _run_thread(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        assert [r.getMessage() for r in caplog.records] == [
            f"events-writer stopped: {os.strerror(errno.ENOSPC)}"]
        assert forwarded == []  # no traceback printed
        _run_thread(ValueError("a bug"))  # not storage: handed on untouched
        assert [type(args.exc_value) for args in forwarded] == [ValueError]
    finally:
        threading.excepthook = previous
