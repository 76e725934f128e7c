"""Start-up time of the everyday commands, two installs side by side (interleaved runs, so a
busy machine slows both alike), where the import time goes (`python -X importtime`), and with
--first-step the time from start to the first training step, compilation cache cold and warm.

    .venv/bin/python scripts/bench_startup.py --before ../old/.venv --after .venv --runs 7
    .venv/bin/python scripts/bench_startup.py --before .venv --after .venv --after-pythonpath pkg --first-step

An install is a venv and, optionally, a PYTHONPATH put first (e.g. a folder holding a link
`hydralearn -> <checkout>/src`: another checkout's code with the same venv). Each command runs in
a fresh empty directory (no run directory is made: they print or refuse). Prints the median wall
time of each command per install and the ratio, then the packages whose modules take the most
import time, for each install.

--first-step starts the quickstart's training (the default config) and times it until its first
step is recorded in metrics.jsonl, then stops it: cold with an empty compilation cache, warm
with the cache the cold run filled (JAX's own JAX_COMPILATION_CACHE_DIR, which an install
without `trainer.compile_cache` honours too).
"""

import argparse
import dataclasses
import os
import signal
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
ENV = {k: v for k, v in os.environ.items()
       if k not in ("XLA_FLAGS", "PYTHONPROFILEIMPORTTIME", "PYTHONPATH", "JAX_COMPILATION_CACHE_DIR")}
POLL_S = 0.05


@dataclasses.dataclass(frozen=True)
class Install:
    venv: Path
    pythonpath: str | None = None

    def env(self, **extra: str) -> dict[str, str]:
        return ENV | ({"PYTHONPATH": self.pythonpath} if self.pythonpath else {}) | extra

    def command(self, argv: list[str]) -> list[str]:
        return [str(self.venv / "bin" / argv[0]), *argv[1:]]


def wall(install: Install, argv: list[str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run(install.command(argv), cwd=cwd, env=install.env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def to_first_step(install: Install, run_dir: Path, cache_dir: Path) -> float:
    """Seconds from start until the first step's record is in metrics.jsonl; then stopped."""
    metrics = run_dir / "metrics.jsonl"
    started = time.perf_counter()
    proc = subprocess.Popen(install.command(["hydralearn-train", f"hydra.run.dir={run_dir}"]),
                            env=install.env(JAX_COMPILATION_CACHE_DIR=str(cache_dir)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        while not (metrics.is_file() and metrics.read_text().strip()):
            if proc.poll() is not None:
                raise RuntimeError(f"{run_dir}: the run ended (exit {proc.returncode}) before a step")
            time.sleep(POLL_S)
        return time.perf_counter() - started
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def import_costs(install: Install, argv: list[str], cwd: str, top: int) -> list[tuple[str, float]]:
    """Import time (seconds, the modules' own time summed) per top-level package, largest first."""
    proc = subprocess.run([str(install.venv / "bin" / "python"), "-X", "importtime",
                           *install.command(argv)], cwd=cwd, env=install.env(),
                          capture_output=True, text=True)
    costs: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            own, _, name = line.removeprefix("import time:").split("|")
            package = name.strip().split(".")[0]
            costs[package] = costs.get(package, 0.0) + int(own) / 1e6
    return sorted(costs.items(), key=lambda kv: -kv[1])[:top]


def commands(installs: dict[str, Install], runs: int, top: int, cwd: str) -> None:
    times = {(c, v): [] for c in COMMANDS for v in installs}
    for _ in range(runs):
        for command, argv in COMMANDS.items():
            for label, install in installs.items():
                times[command, label].append(wall(install, argv, cwd))
    print(f"median wall time of {runs} interleaved runs (s)")
    print(f"{'command':<16} {'before':>8} {'after':>8} {'after/before':>13}")
    for command in COMMANDS:
        before, after = (statistics.median(times[command, v]) for v in installs)
        print(f"{command:<16} {before:8.2f} {after:8.2f} {after / before:13.2f}")
    for command in ("--cfg job", "typo-key error"):
        for label, install in installs.items():
            costs = import_costs(install, COMMANDS[command], cwd, top)
            print(f"\n{command}, {label}: import time by package (s)")
            print("  " + ", ".join(f"{name} {s:.2f}" for name, s in costs))


def first_steps(installs: dict[str, Install], runs: int, tmp: Path) -> None:
    times = {(v, s): [] for v in installs for s in ("cold", "warm")}
    for i in range(runs):
        for label, install in installs.items():
            cache = tmp / f"cache-{label}-{i}"  # empty: cold; then what the cold run wrote: warm
            for state in ("cold", "warm"):
                run_dir = tmp / f"run-{label}-{state}-{i}"
                times[label, state].append(to_first_step(install, run_dir, cache))
    print(f"\nto the first step (the quickstart's model), median of {runs} interleaved runs (s)")
    print(f"{'install':<8} {'cold':>8} {'warm':>8} {'warm/cold':>10}")
    for label in installs:
        cold, warm = (statistics.median(times[label, s]) for s in ("cold", "warm"))
        print(f"{label:<8} {cold:8.2f} {warm:8.2f} {warm / cold:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True,
                        help="a venv (e.g. an older checkout's .venv)")
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--before-pythonpath", help="PYTHONPATH for --before (default: none)")
    parser.add_argument("--after-pythonpath", help="PYTHONPATH for --after (default: none)")
    parser.add_argument("--runs", type=int, default=7, help="of each command (0: none)")
    parser.add_argument("--top", type=int, default=6)
    parser.add_argument("--first-step", action="store_true",
                        help="also time start -> first training step, compilation cache cold and warm")
    parser.add_argument("--first-step-runs", type=int, default=3)
    args = parser.parse_args()
    installs = {"before": Install(args.before.absolute(), _absolute(args.before_pythonpath)),
                "after": Install(args.after.absolute(), _absolute(args.after_pythonpath))}
    with tempfile.TemporaryDirectory() as cwd:
        if args.runs:
            commands(installs, args.runs, args.top, cwd)
        if args.first_step:
            first_steps(installs, args.first_step_runs, Path(cwd))


def _absolute(pythonpath: str | None) -> str | None:
    """The commands run in a temporary directory: relative entries would point nowhere."""
    return pythonpath and os.pathsep.join(str(Path(p).absolute()) for p in pythonpath.split(os.pathsep))


if __name__ == "__main__":
    main()
