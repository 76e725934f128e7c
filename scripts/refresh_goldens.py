"""Rewrite tests/golden/ from conf/experiment/ (deterministic: same conf/, same bytes).

Run from the repository root: .venv/bin/python scripts/refresh_goldens.py
Then review `git diff tests/golden/`: it is what your config change does to every experiment.
"""

import argparse
import os
import sys
from pathlib import Path

# Goldens are computed abstractly; one CPU device is all jax needs, whatever this machine has.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from hydralearn.review.golden import GOLDEN_DIR, refresh  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN_DIR,
                        help="write them here instead (e.g. to compare with tests/golden/)")
    args = parser.parse_args()
    written = refresh(args.out)
    print(f"wrote {len(written)} golden files in {args.out}")


if __name__ == "__main__":
    sys.exit(main())
