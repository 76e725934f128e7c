"""Start-up time of the everyday commands, two installs side by side (interleaved runs, so a
busy machine slows both alike), and where the import time goes (`python -X importtime`).

    .venv/bin/python scripts/bench_startup.py --before ../old/.venv --after .venv --runs 7

Each command runs in a fresh empty directory (no run directory is made: they print or refuse).
Prints the median wall time of each command per install and the ratio, then the packages
whose modules take the most import time, for each install.
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "--cfg job": ["hydralearn-train", "--cfg", "job"],
    "typo-key error": ["hydralearn-train", "model.d_modle=3"],
    "--help": ["hydralearn-train", "--help"],
    "plan": ["hydralearn-plan", "--top", "0"],
    "diff": ["hydralearn-diff", "--", "optim.lr=1e-3"],
}
ENV = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PYTHONPROFILEIMPORTTIME")}


def wall(venv: Path, argv: list[str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], cwd=cwd, env=ENV,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def import_costs(venv: Path, argv: list[str], cwd: str, top: int) -> list[tuple[str, float]]:
    """Import time (seconds, the modules' own time summed) per top-level package, largest first."""
    proc = subprocess.run([str(venv / "bin" / "python"), "-X", "importtime", str(venv / "bin" / argv[0]),
                           *argv[1:]], cwd=cwd, env=ENV, capture_output=True, text=True)
    costs: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            own, _, name = line.removeprefix("import time:").split("|")
            package = name.strip().split(".")[0]
            costs[package] = costs.get(package, 0.0) + int(own) / 1e6
    return sorted(costs.items(), key=lambda kv: -kv[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a venv (e.g. an older checkout's .venv)")
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--top", type=int, default=6)
    args = parser.parse_args()
    venvs = {"before": args.before.absolute(), "after": args.after.absolute()}
    times = {(c, v): [] for c in COMMANDS for v in venvs}
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(args.runs):
            for command, argv in COMMANDS.items():
                for label, venv in venvs.items():
                    times[command, label].append(wall(venv, argv, cwd))
        print(f"median wall time of {args.runs} interleaved runs (s)")
        print(f"{'command':<16} {'before':>8} {'after':>8} {'after/before':>13}")
        for command in COMMANDS:
            before, after = (statistics.median(times[command, v]) for v in venvs)
            print(f"{command:<16} {before:8.2f} {after:8.2f} {after / before:13.2f}")
        for command in ("--cfg job", "typo-key error"):
            for label, venv in venvs.items():
                costs = import_costs(venv, COMMANDS[command], cwd, args.top)
                print(f"\n{command}, {label}: import time by package (s)")
                print("  " + ", ".join(f"{name} {s:.2f}" for name, s in costs))


if __name__ == "__main__":
    main()
