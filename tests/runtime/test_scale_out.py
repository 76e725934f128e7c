"""Multi-process JAX with real processes: two `hydralearn-train` processes on this machine
(coordinator on 127.0.0.1, CPU collectives through gloo, 2 simulated CPU devices each: 4 in
all) against one process with 4 simulated devices.

- the two-process run's per-step losses equal the one-process run's; only process 0 writes
  the run's records; its checkpoint holds the one-process run's parameters, and a resume by
  one process is refused (each process saved its own data shard's position);
- SIGTERM to one process: both save the same step and exit 0; run again, both resume and end
  with the uninterrupted run's losses and parameters;
- kill -9 of one process: the other exits non-zero within the heartbeat timeout, naming it;
- different overrides on the two processes: both refuse, naming the key;
- a second job on a held run directory: every one of its processes refuses.

Independent jobs start together (module fixture) so their compile times overlap.
"""

import shutil
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from tests.runtime.processes import TINY, deterministic, errors, start, wait_for

# The slow tier: every test here starts several JAX processes.
pytestmark = pytest.mark.slow

STEPS = 6
RUN = [*TINY, f"trainer.steps={STEPS}", "checkpoint.every_steps=3", "trainer.eval_every=3",
       "trainer.log_every=1", "checkpoint.mode=sync"]
HEARTBEAT_S = 5
WAIT_S = 900


def final_params(run_dir: Path, step: int) -> dict[str, np.ndarray]:
    """Every array of checkpoint `step`, read with orbax directly onto one device (a
    checkpoint of several processes needs a target saying where its arrays go)."""
    import jax
    import orbax.checkpoint as ocp

    path = run_dir / "checkpoints" / str(step) / "state"
    reader = ocp.StandardCheckpointer()
    here = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=here),
                          reader.metadata(path).item_metadata)
    return {jax.tree_util.keystr(k): np.asarray(v)
            for k, v in jax.tree_util.tree_flatten_with_path(reader.restore(path, target))[0]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job(run_dir: Path, *overrides: str, per_process: tuple[tuple[str, ...], ...] = ((), ()),
        heartbeat_s: int = 120) -> list:
    """The two processes of one job, each with 2 CPU devices; `per_process` adds overrides.
    A short heartbeat timeout only where a process is killed: a loaded machine can starve a
    live process's heartbeats for seconds."""
    shared = [*RUN, "hardware.hosts=2", "+hardware.xla_flags.xla_force_host_platform_device_count=2",
              f"distributed.coordinator=127.0.0.1:{_free_port()}", "distributed.num_processes=2",
              f"distributed.heartbeat_timeout_s={heartbeat_s}", "distributed.init_timeout_s=120",
              *overrides]
    return [start(run_dir, *shared, f"distributed.process_id={i}", *extra)
            for i, extra in enumerate(per_process)]


def single(run_dir: Path, *overrides: str):
    """One process with 4 simulated CPU devices."""
    return start(run_dir, *RUN, "+hardware.xla_flags.xla_force_host_platform_device_count=4",
                 *overrides)


def done(processes: list) -> list:
    # Several jobs compile at once on a shared machine: allow more than one process's timeout.
    for process in processes:
        process.popen.wait(WAIT_S)
    return [p.result() for p in processes]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale_out")
    started = {"two": job(root / "two"), "one": single(root / "one"),
               "mismatch": job(root / "mismatch", per_process=((), ("trainer.eval_every=2",))),
               "killed": job(root / "killed", heartbeat_s=HEARTBEAT_S)}
    # kill -9 process 1 once process 0 holds the run directory (both joined, compiling).
    wait_for(lambda: (root / "killed" / "run.lock").exists(), started["killed"][0], "the lock",
             timeout_s=WAIT_S)
    started["killed"][1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    # A second job on the first one's run directory, once the first holds it.
    wait_for(lambda: (root / "two" / "run.lock").exists(), started["two"][0], "the lock",
             timeout_s=WAIT_S)
    started["second"] = job(root / "two")
    yield {"root": root, "procs": started, "killed_at": killed_at}
    for process in [p for value in started.values() for p in (value if isinstance(value, list) else [value])]:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)


@pytest.fixture(scope="module")
def finished(jobs):
    two, (one,) = done(jobs["procs"]["two"]), done([jobs["procs"]["one"]])
    for result in [*two, one]:
        assert result.returncode == 0, result.stderr[-3000:]
    return {"two": jobs["root"] / "two", "one": jobs["root"] / "one", "results": two}


def test_two_processes_compute_what_one_process_computes(finished):
    two, one = deterministic(finished["two"]), deterministic(finished["one"])
    assert sorted(two) == sorted(one) == list(range(1, STEPS + 1))
    for step in one:
        for key, value in one[step].items():
            # The same sums over 4 devices, reduced through gloo instead of in one process.
            assert two[step][key] == pytest.approx(value, rel=1e-6, abs=1e-7), (step, key)
    p0, p1 = finished["results"]
    print("per-step loss, 2 processes vs 1:",
          [(s, two[s]["loss"], one[s]["loss"]) for s in sorted(one) if "loss" in one[s]])
    print(f"two-process job wall time: {max(p0.elapsed_s, p1.elapsed_s):.1f} s")
    # Only process 0 writes the run's records; process 1 logs to its own file, warnings only.
    run_dir = finished["two"]
    assert (run_dir / "summary.json").exists() and (run_dir / "train.process1.log").exists()
    assert "parameters, mesh" in p0.stdout and "parameters, mesh" not in p1.stdout
    assert "loss=" in p0.stderr and "loss=" not in p1.stderr  # the progress bar
    # Every process wrote its shards of each checkpoint: the parameters match the single run's.
    for key, value in final_params(finished["one"], STEPS).items():
        np.testing.assert_allclose(final_params(run_dir, STEPS)[key], value, rtol=1e-5, atol=1e-7)


@pytest.fixture(scope="module")
def preempted(finished, tmp_path_factory):
    """SIGTERM to process 1 of a job while it compiles; then the same job again. And the
    two-process run's step-3 checkpoint started by one process."""
    root = tmp_path_factory.mktemp("preempted")
    processes = job(root / "run")
    wait_for(lambda: (root / "run" / "run.lock").exists(), processes[0], "the lock",
             timeout_s=WAIT_S)
    processes[1].send_signal(signal.SIGTERM)
    moved = root / "moved"
    shutil.copytree(finished["two"], moved)
    shutil.rmtree(moved / "checkpoints" / str(STEPS))
    resumed_alone = single(moved)
    first = done(processes)
    saved = sorted(int(p.name) for p in (root / "run" / "checkpoints").iterdir())
    again = done(job(root / "run"))
    return {"first": first, "saved": saved, "again": again, "run": root / "run", "moved": moved,
            "alone": done([resumed_alone])[0]}


def test_sigterm_on_one_process_saves_one_step_everywhere_and_resumes_exactly(preempted, finished):
    assert [r.returncode for r in preempted["first"]] == [0, 0], preempted["first"][0].stderr[-3000:]
    saved = preempted["saved"]
    assert len(saved) == 1 and 0 < saved[0] < STEPS
    # Process 1 got the signal; both stopped at the step they agreed on.
    for result in preempted["first"]:  # a warning: on the console of every process
        assert f"stopped: checkpoint saved at step {saved[0]}" in result.stdout
    assert [r.returncode for r in preempted["again"]] == [0, 0], preempted["again"][0].stderr[-3000:]
    assert deterministic(preempted["run"]) == deterministic(finished["two"])
    expected = final_params(finished["two"], STEPS)
    for key, value in final_params(preempted["run"], STEPS).items():
        np.testing.assert_array_equal(value, expected[key])


def test_a_two_process_checkpoint_is_not_resumed_by_one_process(preempted):
    """Its parameters load anywhere (read onto one device in the first test), but each process
    saved the position of its own data shard: another process count is refused, untouched."""
    alone = preempted["alone"]
    assert alone.returncode == 2, alone.stderr[-3000:]
    assert "was written by 2 JAX processes and this run has 1" in errors(alone.stderr)[0]
    assert sorted(p.name for p in (preempted["moved"] / "checkpoints").iterdir()) == ["3"]


def test_a_dead_process_ends_the_survivor_within_the_heartbeat_timeout(jobs):
    process = jobs["procs"]["killed"][0]
    (survivor,) = done([process])
    assert survivor.returncode != 0
    waited = process.started + survivor.elapsed_s - jobs["killed_at"]
    assert waited < HEARTBEAT_S + 30, waited
    # JAX's coordination service names the silent process (task 1).
    assert "stopped sending heartbeats" in survivor.stderr
    assert "heartbeats):\n1\n" in survivor.stderr


def test_every_process_of_a_second_job_on_a_held_run_directory_refuses(jobs):
    refused = done(jobs["procs"]["second"])
    assert [r.returncode for r in refused] == [2, 2], refused[0].stderr[-2000:]
    assert " is in use by pid " in errors(refused[0].stderr)[0]
    assert errors(refused[1].stderr)[0].startswith("hydralearn: error: process 0 of this job could "
                                                   "not take ")


def test_processes_that_composed_different_configs_both_refuse(jobs):
    for result in done(jobs["procs"]["mismatch"]):
        assert result.returncode == 2
        assert errors(result.stderr)[0] == ("hydralearn: error: process 1 composed a different "
                                            "config than process 0: trainer.eval_every=2 "
                                            "(process 0: 3)")
    assert not (jobs["root"] / "mismatch").exists()
