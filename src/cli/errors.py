"""User errors end the process with one clear message and exit code 2, never a traceback.

Run failures (runtime.errors.RunError: storage, a held run directory, a non-finite loss) end
it with one line and their own exit code (runtime/run.py failure_line); HYDRA_FULL_ERROR=1 shows
their traceback instead.
"""

import sys

from hydralearn.errors import ConfigError
from hydralearn.exit_codes import USER_ERROR_EXIT


def exit_with(error: ConfigError) -> None:
    for line in error.errors:
        print(f"hydralearn: error: {line}", file=sys.stderr)
    sys.exit(USER_ERROR_EXIT)
