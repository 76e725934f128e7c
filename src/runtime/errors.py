"""Failures that end a run with one line and an exit code that tells a scheduler what happened.

Each is raised where the cause is known and printed by the CLI as `hydralearn: error: <line>`
(the traceback only with HYDRA_FULL_ERROR=1). Config problems are `ConfigError` (exit 2).
The codes: hydralearn/exit_codes.py.
"""

from hydralearn.exit_codes import FAILURE_EXIT, STORAGE_EXIT, USER_ERROR_EXIT


# What Ctrl-C ends a command with when no step was saved by it (runtime/run.py, cli/train.py).
INTERRUPTED_LINE = "interrupted (Ctrl-C); the newest checkpoint, if any, is kept"


class RunError(Exception):
    """A run that cannot go on; str(error) is the one line the user reads."""

    exit_code = FAILURE_EXIT


class RunRefused(RunError):
    """The run directory cannot be used as asked (held by another process, no restorable
    checkpoint); nothing in it was changed."""

    exit_code = USER_ERROR_EXIT


class StorageError(RunError):
    """Reading or writing the run directory failed: disk full, read-only, missing, I/O error."""

    exit_code = STORAGE_EXIT
