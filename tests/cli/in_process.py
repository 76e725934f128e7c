"""`hydralearn-train` called in this process (its `main`, with sys.argv set), for checking many
command lines cheaply: one composition each, no interpreter start-up or import."""

import contextlib
import io
import logging
import sys
from pathlib import Path

from hydralearn.cli import train


def train_main(argv: list[str]) -> tuple[int, list[str]]:
    """(exit code, stderr lines) of `hydralearn-train *argv`. A traceback is an exit code of
    None with the traceback's lines."""
    import traceback

    err = io.StringIO()
    saved = sys.argv, logging.raiseExceptions  # main() sets it for the process
    sys.argv = ["hydralearn-train", *argv]
    code = 0
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                train.main()
            except SystemExit as e:
                code = e.code
            except BaseException:  # noqa: BLE001 - reported as the caller's failure
                traceback.print_exc()
                code = None
    finally:
        sys.argv, logging.raiseExceptions = saved
    return code, err.getvalue().splitlines()


def tree(root: Path) -> set[Path]:
    return set(Path(root).rglob("*"))
