"""Rewrite tests/golden/ from conf/experiment/ (deterministic: same conf/, same bytes).

Run from the repository root: .venv/bin/python scripts/refresh_goldens.py
Then review `git diff tests/golden/`: it is what your config change does to every experiment.
"""

import os
import sys

# Goldens are computed abstractly; one CPU device is all jax needs, whatever this machine has.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from hydralearn.review.golden import GOLDEN_DIR, refresh  # noqa: E402


def main() -> None:
    written = refresh()
    print(f"wrote {len(written)} golden files in {GOLDEN_DIR}")


if __name__ == "__main__":
    sys.exit(main())
