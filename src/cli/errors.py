"""User errors end the process with one clear message and exit code 2, never a traceback.

Run failures (runtime.errors.RunError: storage, a held run directory, a non-finite loss) end
it with one line and their own exit code; HYDRA_FULL_ERROR=1 shows their traceback instead.
"""

import os
import sys

from hydralearn.compose.validate import ConfigError
from hydralearn.runtime.errors import RunError

USER_ERROR_EXIT = 2


def exit_with(error: ConfigError) -> None:
    for line in error.errors:
        print(f"hydralearn: error: {line}", file=sys.stderr)
    sys.exit(USER_ERROR_EXIT)


def exit_run_error(error: RunError) -> None:
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    print(f"hydralearn: error: {error}", file=sys.stderr)
    sys.exit(error.exit_code)
