"""Real `hydralearn-train` processes on a tiny model, and what to read back from their run
directories. Processes see one CPU device (XLA_FLAGS cleared) and no HYDRA_FULL_ERROR.

They share one JAX persistent compilation cache (a temporary directory of this test session):
the many processes of one shape compile it once. A cached executable is the same program, so
the exact-resume comparisons are unaffected.
"""

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

TINY = ["data=synthetic", "model.d_model=32", "model.num_layers=2", "model.num_heads=4",
        "model.num_kv_heads=2", "model.ffn_dim=64", "data.seq_len=16", "data.batch_size=8",
        "trainer.sample_tokens=0"]
# 12 steps, a checkpoint every 4, eval every 4, every step logged.
SHORT = [*TINY, "trainer.steps=12", "checkpoint.every_steps=4", "trainer.eval_every=4",
         "trainer.log_every=1"]
CLI = [str(Path(sys.executable).parent / "hydralearn-train")]
TIMEOUT_S = 240
_COMPILE_CACHE = tempfile.mkdtemp(prefix="hydralearn-test-jax-cache-")
atexit.register(shutil.rmtree, _COMPILE_CACHE, True)


def env() -> dict:
    out = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="", JAX_COMPILATION_CACHE_DIR=_COMPILE_CACHE,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    out.pop("HYDRA_FULL_ERROR", None)
    return out


def launch(run_dir: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *overrides, f"hydra.run.dir={run_dir}"], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_cli(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *overrides, f"hydra.run.dir={run_dir}"], env=env(),
                          capture_output=True, text=True, timeout=TIMEOUT_S)


class Process:
    """A started command whose output a thread drains (no pipe fills up, however long it runs);
    `result()` also gives how long it ran (`elapsed_s`)."""

    def __init__(self, command: list[str], *, cwd: Path | None = None):
        self.started = time.monotonic()
        self.popen = subprocess.Popen(command, cwd=cwd, env=env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        self.stdout, self.stderr = self.popen.communicate()
        self.elapsed_s = time.monotonic() - self.started

    def poll(self) -> int | None:
        return self.popen.poll()

    def send_signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def result(self) -> subprocess.CompletedProcess:
        self._thread.join(TIMEOUT_S)
        if self._thread.is_alive():  # hung: say so (its output comes once it is killed)
            self.popen.kill()
            self._thread.join()
            raise AssertionError(f"{' '.join(map(str, self.popen.args))[-300:]} did not end within "
                                 f"{TIMEOUT_S} s; its output:\n{self.stdout[-2000:]}\n{self.stderr[-2000:]}")
        done = subprocess.CompletedProcess(self.popen.args, self.popen.returncode, self.stdout, self.stderr)
        done.elapsed_s = self.elapsed_s
        return done


def start(run_dir: Path | None, *overrides: str, prefix: tuple[str, ...] = (),
          cwd: Path | None = None) -> Process:
    """hydralearn-train with `overrides` (and hydra.run.dir=`run_dir` unless None)."""
    run = [f"hydra.run.dir={run_dir}"] if run_dir is not None else []
    return Process([*prefix, *CLI, *overrides, *run], cwd=cwd)


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("hydralearn: error:")]


def records(run_dir: Path) -> dict[int, dict]:
    """metrics.jsonl merged per step (a step may have a train record and an eval record)."""
    out: dict[int, dict] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        out.setdefault(record["step"], {}).update(record)
    return out


def deterministic(run_dir: Path) -> dict[int, dict]:
    """The per-step values that must not depend on timing or interruptions."""
    keys = ("loss", "grad_norm", "lr", "eval_loss", "nonfinite", "skipped_steps")
    return {s: {k: r[k] for k in keys if k in r} for s, r in records(run_dir).items()}


def final_params(run_dir: Path, step: int = 12) -> dict[str, np.ndarray]:
    """Every array of checkpoint `step`, read with orbax directly (not the Checkpointer)."""
    import jax
    import orbax.checkpoint as ocp
    restored = ocp.StandardCheckpointer().restore(run_dir / "checkpoints" / str(step) / "state")
    return {jax.tree_util.keystr(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(restored)[0]}


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file below `directory` with its bytes."""
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def wait_for(predicate, process: subprocess.Popen, what: str, timeout_s: float = TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if process.poll() is not None:
            stderr = process.result().stderr if isinstance(process, Process) else process.stderr.read()
            raise AssertionError(f"process exited ({process.poll()}) before {what}:\n{stderr[-3000:]}")
        time.sleep(0.0005)
    process.send_signal(9)
    raise AssertionError(f"timed out waiting for {what}")
