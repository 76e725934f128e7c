"""Nothing lost, nothing silently wrong: real `hydralearn-train` processes on real files.

- two starts on one run directory: one trains, the other is refused naming the holder; the
  holder is killed with -9 after its step-8 checkpoint, a bit of that checkpoint is flipped,
  and a new start takes the lock over, names and sets aside the damaged step, resumes from
  step 4 and ends in exactly the uninterrupted run's state and metrics;
- a changed d_model with resolved_config.yaml deleted: refused from the checkpoint's own
  config record, checkpoints and metrics left byte for byte;
- refused before any work, in one line: bad names, a batch that cannot fit, read-only and
  missing storage; a full disk during a save; Ctrl-C saves, a second Ctrl-C exits at once.

Independent processes start at once (module fixture) so their costs overlap; the processes of
the reference run's shape start once the first of them has compiled (a shared compile cache).
"""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hydralearn.runtime import integrity
from tests.runtime.processes import (SHORT, TINY, deterministic, errors, final_params, run_cli,
                                     snapshot, start, wait_for)

# Holds the tiny model's step-4 checkpoint (~0.5 MB) but not a second one beside it.
TMPFS_SIZE = "800k"
NAMESPACE = ["unshare", "--user", "--map-root-user", "--mount"]
# Sync saves: the holder is still writing step 12 well after step 8 is committed, so the kill
# lands between the two. The mode changes nothing the run computes.
HOLDER = [*SHORT, "checkpoint.mode=sync"]


def _in_tmpfs(mount: Path, copy_to: Path, options: str) -> tuple[str, ...]:
    """A prefix that runs the command with a fresh tmpfs at `mount` (a private mount namespace,
    no privileges needed) and copies the run directory out before the namespace ends."""
    script = (f'mount -t tmpfs -o {options} tmpfs "{mount}" || exit 97\n'
              f'"$@"; rc=$?; cp -a "{mount}/run" "{copy_to}/" 2>/dev/null; exit $rc')
    return (*NAMESPACE, "sh", "-c", script, "sh")


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    """Every process that needs no other, started together."""
    root = tmp_path_factory.mktemp("safety")
    for name in ("names", "full", "full_out", "readonly", "readonly_out"):
        (root / name).mkdir()
    (root / "a_file").write_text("not a directory")
    tmpfs = subprocess.run([*NAMESPACE, "true"], capture_output=True).returncode == 0
    procs = {
        "race_a": start(root / "shared", *HOLDER),
        "race_b": start(root / "shared", *HOLDER),
        # Both names in one process: every point of a sweep is checked before any runs.
        "names": start(None, "-m", *TINY, "name=../x,''", cwd=root / "names"),
        "too_big": start(root / "too_big", *TINY, "data.batch_size=4096", "data.seq_len=4096"),
        "missing": start(root / "a_file" / "run", *TINY),
    }
    if tmpfs:
        procs["readonly"] = start(root / "readonly" / "run", *TINY,
                                  prefix=_in_tmpfs(root / "readonly", root / "readonly_out", "ro"))
    yield {"root": root, "procs": procs, "tmpfs": tmpfs}
    for process in procs.values():  # a failed test may leave one running (ctrl_c runs long)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)


def _start_and_interrupt(started) -> None:
    """The reference run's command, with Ctrl-C as soon as its first step is logged (from a
    thread: the other processes go on meanwhile)."""
    run_dir = started["root"] / "ctrl_c"
    process = started["procs"]["ctrl_c"] = start(run_dir, *SHORT)
    metrics = run_dir / "metrics.jsonl"

    def interrupt() -> None:
        while not (metrics.exists() and metrics.stat().st_size) and process.poll() is None:
            time.sleep(0.001)
        process.send_signal(signal.SIGINT)

    started["ctrl_c"] = threading.Thread(target=interrupt, daemon=True)
    started["ctrl_c"].start()


def result(started, name: str) -> subprocess.CompletedProcess:
    if name not in started["procs"]:
        pytest.skip("no private mount namespace here (unshare --user --mount): no tmpfs")
    return started["procs"][name].result()


def _one_line_refusal(done: subprocess.CompletedProcess, code: int = 2) -> str:
    output = f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == code, output
    assert "Traceback" not in done.stderr + done.stdout, output
    lines = errors(done.stderr)
    assert len(lines) == 1, output
    return lines[0]


@pytest.fixture(scope="module")
def race(started, request) -> dict:
    procs, shared = started["procs"], started["root"] / "shared"
    checkpoints = shared / "checkpoints"
    wait_for(lambda: procs["race_a"].poll() is not None or procs["race_b"].poll() is not None,
             procs["race_a"], "one of the two starts to be refused")
    refused, holder = ("race_a", "race_b") if procs["race_a"].poll() is not None else ("race_b", "race_a")
    metrics = shared / "metrics.jsonl"  # created empty before the first step, written after it
    wait_for(lambda: metrics.exists() and metrics.stat().st_size, procs[holder], "the holder's first step")
    # Compiled now: the processes of the same shape reuse it.
    request.getfixturevalue("baseline_started")
    _start_and_interrupt(started)
    if started["tmpfs"]:
        root = started["root"]
        procs["full"] = start(root / "full" / "run", *SHORT,
                              prefix=_in_tmpfs(root / "full", root / "full_out", f"size={TMPFS_SIZE}"))
    wait_for(lambda: (checkpoints / "8").is_dir(), procs[holder], "the step-8 checkpoint")
    procs[holder].send_signal(signal.SIGKILL)
    killed = procs[holder].result()
    steps_left = sorted(p.name for p in checkpoints.iterdir())
    damaged = max((checkpoints / "8" / "state").rglob("d/*"), key=lambda p: p.stat().st_size)
    content = bytearray(damaged.read_bytes())
    content[len(content) // 2] ^= 0x10  # one bit of the largest array file
    damaged.write_bytes(bytes(content))
    (checkpoints / "8.corrupt-1").mkdir()  # an earlier quarantine: its name must not be reused
    return {"dir": shared, "refused": procs[refused].result(), "killed": killed,
            "steps_left": steps_left, "damaged": damaged.relative_to(checkpoints / "8").as_posix(),
            "taken_over": run_cli(shared, *SHORT)}


def test_second_start_is_refused_naming_the_holder(race):
    line = _one_line_refusal(race["refused"])
    assert f"{race['dir']} is in use by pid " in line and "on host" in line
    assert "set name=<new name>" in line


def test_killed_holder_is_taken_over_and_a_flipped_bit_sends_it_to_the_previous_step(race):
    assert race["killed"].returncode == -signal.SIGKILL, "the holder ended before it was killed"
    assert race["steps_left"] == ["4", "8"], race["steps_left"]
    taken_over = race["taken_over"]
    assert taken_over.returncode == 0, taken_over.stderr[-3000:]
    log = taken_over.stdout + taken_over.stderr
    checkpoints = race["dir"] / "checkpoints"
    assert (f"checkpoint {checkpoints / '8'} is corrupt: {race['damaged']} does not match its "
            "checksum; renamed to 8.corrupt-2, trying the previous one") in log
    assert "resuming from step 4" in log and "Traceback" not in log and "Event loop" not in log
    assert (checkpoints / "8.corrupt-2" / race["damaged"]).is_file()
    assert integrity.verify(checkpoints / "8") is None  # written again by the resumed run


def test_resumed_run_equals_the_uninterrupted_one(race, baseline):
    assert race["taken_over"].returncode == 0
    assert deterministic(race["dir"]) == deterministic(baseline)  # history kept, then appended
    expected, got = final_params(baseline), final_params(race["dir"])
    assert expected.keys() == got.keys() and len(expected) > 10
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_shape_change_without_resolved_config_is_refused_and_nothing_touched(race):
    (race["dir"] / "resolved_config.yaml").unlink()
    before = _run_records(race["dir"])
    refused = run_cli(race["dir"], *SHORT, "model.d_model=48")
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "Traceback" not in refused.stderr
    assert any("model.d_model: 32 -> 48 (cannot change when resuming" in line
               for line in errors(refused.stderr)), refused.stderr
    assert _run_records(race["dir"]) == before
    assert not (race["dir"] / "resolved_config.yaml").exists()


def _run_records(run_dir: Path) -> dict[str, bytes]:
    """Checkpoints (set-aside ones too), metrics, TensorBoard and summary, byte for byte. Not
    Hydra's own .hydra/ and train.log: Hydra writes those before the task function runs."""
    return {k: v for k, v in snapshot(run_dir).items()
            if not k.startswith(".hydra/") and k not in ("train.log", "run.lock")}


def test_names_that_leave_the_runs_root_are_refused(started):
    done = result(started, "names")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    dotdot, empty = errors(done.stderr)
    assert "[name=../x] name='../x' contains a path separator" in dotdot and "hydra.run.dir" in dotdot
    assert "[name=''] name='' is empty" in empty
    assert not any((started["root"] / "names").iterdir())  # no run directory anywhere
    assert not (started["root"] / "x").exists()


def test_a_batch_that_cannot_fit_is_refused_before_building(started):
    done = result(started, "too_big")
    assert done.returncode == 2, done.stderr[-3000:]
    lines = errors(done.stderr)
    assert "GiB per device" in lines[0] and "host RAM" in lines[0]
    assert "data.batch_size" in lines[1] and "trainer.skip_memory_check=true" in lines[1]
    assert "parameters, mesh" not in done.stdout  # nothing was built, let alone compiled
    assert not (started["root"] / "too_big").exists()  # refused runs leave no directory
    assert done.elapsed_s < 90


def test_storage_through_a_file_is_a_one_line_error(started):
    line = _one_line_refusal(result(started, "missing"), code=5)
    assert f"cannot write to the run directory {started['root'] / 'a_file' / 'run'}: Not a directory" in line


def test_read_only_storage_is_a_one_line_error(started):
    line = _one_line_refusal(result(started, "readonly"), code=5)
    mount = started["root"] / "readonly"
    assert f"cannot write to the run directory {mount / 'run'}: Read-only file system (disk {mount} (tmpfs)" in line


def test_full_disk_during_a_save_keeps_the_previous_checkpoint(started, race):
    done = result(started, "full")
    line = _one_line_refusal(done, code=5)
    mount = started["root"] / "full"
    assert line.startswith(f"hydralearn: error: checkpoint of step 8 could not be written to "
                           f"{mount / 'run' / 'checkpoints'}: No space left on device (disk {mount} (tmpfs): "), line
    assert "Task exception" not in done.stdout, done.stdout
    checkpoints = started["root"] / "full_out" / "run" / "checkpoints"
    left = sorted(p.name for p in checkpoints.iterdir())
    assert left == ["4"], left  # no partial step left
    assert integrity.verify(checkpoints / "4") is None


def test_ctrl_c_saves_at_the_current_step(started, race):
    started["ctrl_c"].join()
    done = result(started, "ctrl_c")
    assert done.returncode == 130, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr
    (step,) = [int(p.name) for p in (started["root"] / "ctrl_c" / "checkpoints").iterdir()]
    assert 0 < step < 12 and f"interrupted: checkpoint saved at step {step}" in done.stdout
    assert integrity.verify(started["root"] / "ctrl_c" / "checkpoints" / str(step)) is None


DOUBLE_CTRL_C = """
import os, signal, time
from hydralearn.runtime.preemption import Preemption
with Preemption() as stop:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
    print("first:", stop.requested, stop.interrupted, flush=True)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(10)
print("not reached")
"""


def test_a_second_ctrl_c_exits_at_once():
    begun = time.monotonic()
    done = subprocess.run([sys.executable, "-c", DOUBLE_CTRL_C], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 130 and time.monotonic() - begun < 10
    assert done.stdout == "first: True True\n"
    assert errors(done.stderr) == ["hydralearn: error: interrupted again: exiting at once, without saving"]
