"""User errors end the process with one clear message and exit code 2, never a traceback."""

import sys

from hydralearn.errors import ConfigError

USER_ERROR_EXIT = 2


def exit_with(error: ConfigError) -> None:
    for line in error.errors:
        print(f"hydralearn: error: {line}", file=sys.stderr)
    sys.exit(USER_ERROR_EXIT)
