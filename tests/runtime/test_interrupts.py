"""Ctrl-C while the run compiles, before its first step, in a real process: one line, exit 130,
nothing saved (there is no progress), never ignored; a second Ctrl-C exits at once. The child
starts with SIGINT at its default, as a terminal's would (a background shell child inherits it
ignored)."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.runtime.processes import CLI, TINY, env, errors

STEPS = 500  # far more than a stopped run reaches: an ignored Ctrl-C would train them all


def interrupted_while_compiling(run_dir: Path, *, signals: int) -> tuple[subprocess.CompletedProcess, float]:
    """The run, sent `signals` Ctrl-C once its program is built (compilation comes next, with
    its own empty cache); (its result, seconds from the last Ctrl-C to its exit)."""
    cache = {"JAX_COMPILATION_CACHE_DIR": str(run_dir.parent / f"{run_dir.name}-cache")}
    proc = subprocess.Popen([*CLI, *TINY, f"trainer.steps={STEPS}", f"hydra.run.dir={run_dir}"],
                            env=env() | cache, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    out = []
    for line in proc.stdout:
        out.append(line)
        if "parameters, mesh" in line:  # logged once built, just before compiling
            break
    for _ in range(signals):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    last = time.monotonic()
    stdout, stderr = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(out) + stdout, stderr), \
        time.monotonic() - last


@pytest.mark.slow  # a JAX process and a compile: ~15-25 s here, past the default tier's budget
def test_ctrl_c_while_compiling_stops_before_the_first_step(tmp_path):
    done, _ = interrupted_while_compiling(tmp_path / "run", signals=1)
    assert done.returncode == 130, done.stderr[-3000:]
    assert errors(done.stderr) == ["hydralearn: error: interrupted (Ctrl-C); the newest checkpoint, "
                                   "if any, is kept"], done.stderr[-3000:]
    assert "Traceback" not in done.stderr + done.stdout
    assert "Ctrl-C received" in done.stdout  # the handler took it, not a KeyboardInterrupt
    assert not (tmp_path / "run" / "checkpoints").exists() or not os.listdir(tmp_path / "run" / "checkpoints")
    assert not (tmp_path / "run" / "summary.json").exists()  # it did not train to the end


@pytest.mark.slow
def test_a_second_ctrl_c_while_compiling_exits_at_once(tmp_path):
    done, after = interrupted_while_compiling(tmp_path / "run", signals=2)
    assert done.returncode == 130 and after < 5, (after, done.stderr[-3000:])
    assert errors(done.stderr) == ["hydralearn: error: interrupted again: exiting at once, without saving"]
