"""Rewrite the compiled-memory ledger (tests/golden/<name>.compiled.json) by compiling every
named experiment on a GPU or TPU profile for its real target, and print the table for docs.

    bash scripts/bootstrap.sh test               # the test extra includes aot-tpu and aot-gpu
    .venv/bin/python scripts/refresh_ledger.py   # all of them (minutes), or name some

Then review `git diff tests/golden/`. An experiment that does not fit is reported and its
entry left as it was; the script exits 1 if any did not compile.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # this process only plans; children compile

from hydralearn.errors import ConfigError  # noqa: E402
from hydralearn.review import ledger  # noqa: E402

GIB = 2**30


def main(names: list[str]) -> int:
    names = names or ledger.experiments()
    print("| experiment | target | kernel, remat | planner estimate | compiled peak | estimate / peak "
          "| compile time |\n|---|---|---|---:|---:|---:|---:|")
    failed = 0
    for name in names:
        started = time.perf_counter()
        try:
            entry, memory = ledger.compile_entry(name)
        except ConfigError as e:
            failed += 1
            print(f"| {name} | refused: {' '.join(e.errors)} | | | | | {time.perf_counter() - started:.0f} s |")
            continue
        ledger.path(name).write_text(entry.to_json())
        print(f"| {name} | {entry.target}, {entry.device_kind} | {entry.kernel}, {entry.remat} | "
              f"{entry.estimate_bytes / GIB:.1f} GiB | {entry.peak_bytes / GIB:.1f} GiB | "
              f"{entry.estimate_over_peak:.2f} | {memory.compile_seconds:.0f} s |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="experiments (default: every one in the ledger)")
    sys.exit(main(parser.parse_args().names))
