"""Real processes of the real CLI: exact resume after kill -9 (also mid-checkpoint-write),
SIGTERM preemption and requeue, config changes on resume (one rule for hydralearn-train and
hydralearn-diff; a refused run changes nothing), TensorBoard/JSONL metrics, the CPU's measured
peak FLOP/s.

Each process costs several seconds of import and compile, so a few runs are shared by all the
assertions (module-scoped fixtures). Processes see one CPU device (XLA_FLAGS cleared).
"""

import json
import shutil
import signal
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml

from hydralearn.cli import diff as diff_cli
from hydralearn.compose import peak

from tests.runtime.processes import (SHORT, TIMEOUT_S, TINY, deterministic, final_params, launch,
                                     records, run_cli, wait_for)


CACHED_PEAK = 1e13  # FLOP/s: far above what the tiny runs achieve, so none measures again


@pytest.fixture(scope="module", autouse=True)
def peak_cache(tmp_path_factory) -> Path:
    """This module's processes' cache of the CPU's peak (compose/peak.py), holding CACHED_PEAK:
    they run side by side, so a measurement of theirs would be judged busy and not cached."""
    cache_home = tmp_path_factory.mktemp("xdg_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache_home))
        path = peak.cache_path()
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"key": peak.machine_key(), "flops_per_s": CACHED_PEAK}))
        yield path


@pytest.fixture(scope="module")
def killed_mid_write(tmp_path_factory, baseline_started) -> dict:
    """The same run, kill -9 while step 8's checkpoint is being written, then run again."""
    run_dir = tmp_path_factory.mktemp("killed")
    checkpoints = run_dir / "checkpoints"
    process = launch(run_dir, *SHORT)

    def writing_step_8():  # array data of step 8 is on disk but the step is not committed
        tmp = [p for p in checkpoints.glob("8.orbax-checkpoint-tmp*")] if checkpoints.is_dir() else []
        return tmp and any(tmp[0].glob("state*/ocdbt.process_0/d/*")) and tmp[0]

    tmp_dir = wait_for(writing_step_8, process, "step 8's checkpoint write")
    process.send_signal(signal.SIGKILL)
    process.wait()
    left = {"tmp_still_there": tmp_dir.exists(), "steps": sorted(p.name for p in checkpoints.iterdir())}
    resumed = run_cli(run_dir, *SHORT)
    return {"run_dir": run_dir, "left": left, "tmp_name": tmp_dir.name, "resumed": resumed}


@pytest.mark.slow
def test_kill_mid_write_leaves_previous_checkpoint(killed_mid_write):
    left = killed_mid_write["left"]
    assert left["tmp_still_there"], "the kill landed after the commit: not a mid-write kill"
    assert "4" in left["steps"] and "8" not in left["steps"], left
    resumed = killed_mid_write["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert killed_mid_write["tmp_name"] in log and "incomplete" in log  # the skipped one is named
    assert "resuming from step 4" in log


def test_resumed_run_is_bit_identical_to_uninterrupted(baseline, killed_mid_write):
    expected, got = deterministic(baseline), deterministic(killed_mid_write["run_dir"])
    assert sorted(expected) == list(range(1, 13)) and "eval_loss" in expected[8]
    assert got == expected  # every step's loss, grad norm, lr and eval loss, exactly
    summary = json.loads((killed_mid_write["run_dir"] / "summary.json").read_text())
    assert summary["resumed_from"] == 4 and summary["steps"] == 12
    # The killed attempt left its reach in goodput.json (at step 4's save, or later): what it
    # computed past step 4 is counted lost, and every second of this attempt is in a bucket.
    goodput = summary["goodput"]
    assert goodput["attempts"] == 2 and 0 <= goodput["steps_recomputed"] <= 8 - 4
    buckets = sum(v for k, v in goodput.items() if k.endswith("_s") and k not in (
        "wall_s_all_attempts", "lost_to_restarts_s"))
    attempts = json.loads((killed_mid_write["run_dir"] / "goodput.json").read_text())["attempts"]
    assert buckets == pytest.approx(attempts[-1]["wall_s"], abs=0.01)
    assert 0 < goodput["goodput"] < 1


def test_final_state_equals_uninterrupted(baseline, killed_mid_write):
    expected, got = final_params(baseline), final_params(killed_mid_write["run_dir"])
    assert expected.keys() == got.keys() and len(expected) > 10
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_tensorboard_events_match_jsonl(baseline):
    (event_file,) = (baseline / "tensorboard").glob("events.out.tfevents.*")
    scalars = {}
    for event in _events(event_file):
        for value in event.summary.value:
            scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    expected = records(baseline)
    assert set(scalars["loss"]) == set(range(1, 13))
    for step, value in scalars["loss"].items():
        assert value == pytest.approx(expected[step]["loss"], rel=1e-6)
    assert set(scalars["eval_loss"]) == {4, 8, 12}
    assert {"grad_norm", "lr", "tokens_per_s", "mfu", "checkpoint_blocking_s"} <= set(scalars)


def _events(path: Path):
    """TFRecord framing (u64 length, u32 crc, payload, u32 crc) of tensorboard Event protos."""
    from tensorboardX.proto import event_pb2
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        payload = data[offset + 12: offset + 12 + length]
        offset += 12 + length + 4
        event = event_pb2.Event()
        event.ParseFromString(payload)
        yield event


@pytest.fixture(scope="module")
def preempted(tmp_path_factory) -> dict:
    """A long run that gets SIGTERM once it is training; periodic checkpoints off."""
    run_dir = tmp_path_factory.mktemp("preempted")
    args = [*TINY, "trainer.steps=1000", "checkpoint.every_steps=0", "trainer.log_every=100",
            "trainer.eval_every=0"]
    process = launch(run_dir, *args)
    metrics = run_dir / "metrics.jsonl"
    wait_for(lambda: metrics.exists() and metrics.stat().st_size > 0, process, "the first step")
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    return {"run_dir": run_dir, "args": args, "rc": process.returncode, "out": stdout + stderr}


@pytest.mark.slow
def test_sigterm_saves_at_current_step_and_exits_cleanly(preempted):
    assert preempted["rc"] == 0, preempted["out"][-3000:]
    run_dir = preempted["run_dir"]
    (step,) = [int(p.name) for p in (run_dir / "checkpoints").iterdir()]
    assert 0 < step < 1000
    assert f"preempted: checkpoint saved at step {step}" in preempted["out"]
    meta = json.loads((run_dir / "checkpoints" / str(step) / "run" / "metadata").read_text())
    assert meta["step"] == step
    assert not (run_dir / "summary.json").exists()


def test_shape_change_on_resume_is_refused(preempted):
    run_dir = preempted["run_dir"]
    saved = (run_dir / "resolved_config.yaml").read_text()
    result = run_cli(run_dir, *preempted["args"], "model.d_model=48", "model/ffn=gelu")
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("hydralearn: error:")]
    assert any("model.d_model: 32 -> 48" in line for line in errors), errors
    assert any("model.ffn._target_" in line for line in errors), errors
    assert "Traceback" not in result.stderr
    assert (run_dir / "resolved_config.yaml").read_text() == saved  # nothing was touched


@pytest.mark.slow
def test_requeued_job_resumes_with_a_remat_change(preempted):  # runs after the refusal above
    run_dir = preempted["run_dir"]
    (step,) = [int(p.name) for p in (run_dir / "checkpoints").iterdir()]
    result = run_cli(run_dir, *preempted["args"], "remat=full")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming with a changed setting: remat.policy: 'none' -> 'full'" in result.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from"] == step and summary["steps"] == 1000
    assert "remat" in (run_dir / "resolved_config.yaml").read_text()


# One key of every class of the resume rule (config/resume_rule.py), tried on a finished run.
# A change hydralearn-train accepts finds the run complete (or, for trainer.steps, trains the
# steps added) and exits 0; one it refuses exits 2.
CHANGES = {
    "model.d_model=48": "shape",
    "optim.lr=1e-3": "training",
    "trainer.steps=13": "continuation",
    "remat=full": "performance",
    "+hardware.xla_flags.xla_force_host_platform_device_count=1": "performance",
}
# Refused when the run resolves, before anything is written (in a new directory, an impossible
# mesh leaves none: tests/cli/test_cli.py).
UNRUNNABLE = "kernel=cudnn"


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every file of the run directory byte for byte, but its checkpoints and the lock (which
    names the last process that held the directory: runtime/lock.py)."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and "checkpoints" not in p.parts and p.name != "run.lock"}


@pytest.fixture(scope="module")
def changed_reruns(baseline, tmp_path_factory, peak_cache) -> dict:
    """The finished baseline run run again, as is and with each change, all at once (each in its
    own copy of the run directory: a run directory admits one process at a time)."""
    root = tmp_path_factory.mktemp("rerun")
    shutil.copytree(baseline, root / "finished")
    before, cache_before = snapshot(root / "finished"), peak_cache.read_bytes()
    variants = {"same command": [], **{c: [c] for c in (*CHANGES, UNRUNNABLE)}}
    dirs = {c: shutil.copytree(root / "finished", root / f"run{i}") for i, c in enumerate(variants)}
    procs = {c: launch(dirs[c], *SHORT, *extra) for c, extra in variants.items()}
    done = {c: p.communicate(timeout=TIMEOUT_S) + (p.returncode,) for c, p in procs.items()}
    return {"run_dir": root / "finished", "before": before, "done": done,
            "after": {c: snapshot(d) for c, d in dirs.items()},
            "cache_before": cache_before, "cache_after": peak_cache.read_bytes()}


@pytest.mark.slow
def test_a_refused_run_changes_nothing(changed_reruns):
    done = changed_reruns["done"]
    stdout, stderr, code = done["same command"]
    assert code == 0 and "is already complete" in stdout, stderr[-3000:]
    for change in ("model.d_model=48", UNRUNNABLE):
        assert done[change][2] == 2 and "Traceback" not in done[change][1], done[change][1][-3000:]
    assert "kernel.name=cudnn cannot run here" in done[UNRUNNABLE][1]
    for change in ("same command", "model.d_model=48", UNRUNNABLE):  # .hydra/, resolved config, metrics
        assert changed_reruns["after"][change] == changed_reruns["before"], change
    assert {"resolved_config.yaml", ".hydra/config.yaml", "metrics.jsonl"} <= changed_reruns["before"].keys()


def test_train_and_diff_apply_one_resume_rule(changed_reruns, capsys):
    """hydralearn-diff's verdict on (finished run -> changed config) is what hydralearn-train does."""
    for change, effect in CHANGES.items():
        stdout, stderr, code = changed_reruns["done"][change]
        assert code in (0, 2), stderr[-3000:]
        assert (code == 0) == (effect in ("performance", "continuation")), (change, stderr[-2000:])
        assert ("cannot change when resuming" in stderr) == (code == 2), (change, stderr[-2000:])
        with pytest.raises(SystemExit):
            diff_cli.main([str(changed_reruns["run_dir"]), "--", *SHORT, change])
        out = capsys.readouterr().out
        key = change.lstrip("+").split("=")[0].replace("remat", "remat.policy")
        assert f" {key}: " in out and f"[{effect}]" in out, (change, out)
        verdict = "can" if code == 0 else "cannot"
        assert f"resume: a checkpoint of A {verdict} be resumed as B" in out, (change, out)
    # A longer cosine run resumes at step 12, where the old schedule ended at its floor
    # (optim.lr * min_lr_ratio), and says what the new length does to the rate.
    stdout, stderr, _ = changed_reruns["done"]["trainer.steps=13"]
    config = yaml.safe_load((changed_reruns["run_dir"] / "resolved_config.yaml").read_text())
    floor = config["optim"]["lr"] * config["schedule"]["min_lr_ratio"]
    assert (f"trainer.steps: 12 -> 13: the cosine schedule is laid out over trainer.steps, so from "
            f"step 12 the learning rate goes from {floor:.3g} (the old schedule)") in stdout + stderr


def test_runs_use_the_cached_cpu_peak(changed_reruns, killed_mid_write, peak_cache):
    # The resolved config holds the cached number (one device, so all of it); no run measured
    # again (that would have logged it, or raised the cache).
    resolved = yaml.safe_load((killed_mid_write["run_dir"] / "resolved_config.yaml").read_text())
    assert resolved["hardware"]["peak_flops_per_device"] == CACHED_PEAK
    assert changed_reruns["cache_after"] == changed_reruns["cache_before"]
    assert json.loads(peak_cache.read_text())["flops_per_s"] == CACHED_PEAK
    outputs = [out + err for out, err, _ in changed_reruns["done"].values()]
    assert not any("measured again" in o or "while its peak was measured" in o for o in outputs)


def test_a_run_logs_to_its_file(baseline):
    log = (baseline / "train.log").read_text()
    assert "[hydralearn.runtime.run][INFO] - done in" in log and log.count("done in") == 1
