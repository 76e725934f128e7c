"""User-facing errors: what the user must fix, one line per problem, exit code 2.

A leaf module (imports nothing of the package) so every layer of the package can raise it.
"""

import difflib
from typing import Iterable


class ConfigError(ValueError):
    """User errors; `errors` holds one line per problem, all reported together."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def closest(name: str, options: Iterable[str]) -> str:
    """"; did you mean 'x'?" for the nearest option, compared within the same parent key."""
    parent = name.rpartition(".")[0]
    options = list(options)
    options = [o for o in options if o.rpartition(".")[0] == parent] or options
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else ""
