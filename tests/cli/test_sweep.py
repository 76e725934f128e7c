"""Real multiruns: every point validated first, one flat run dir per point, a failing point
recorded while the others run, a summary at the end, and the joblib launcher.

The two sweeps that train start at once (module fixture) so their costs overlap.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["model.d_model=32", "model.num_layers=1", "model.num_heads=2", "model.num_kv_heads=1",
        "model.ffn_dim=32", "data=synthetic", "data.seq_len=16", "trainer.steps=3",
        "trainer.log_every=1", "trainer.eval_every=0", "trainer.eval_batches=1",
        "trainer.sample_tokens=0"]
TRAIN = str(Path(sys.executable).parent / "hydralearn-train")
# One experiment per point (a group below experiment/, so its key has a '/'): two that train,
# one whose loss diverges, one whose batch the 2-device mesh cannot split (found at resolve).
POINTS = {
    "diverge": "optim:\n  lr: 1.0e+30\n",
    "gelu": "defaults:\n  - override /model/ffn: gelu\n",
    "odd_batch": "data:\n  batch_size: 3\n",
    "swiglu": "{}\n",
}


def launch(args, cwd, devices=1, flags=()):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return subprocess.Popen([TRAIN, "-m", *flags, *TINY, *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc) -> subprocess.CompletedProcess:
    stdout, stderr = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    mixed, parallel = tmp_path_factory.mktemp("mixed"), tmp_path_factory.mktemp("joblib")
    for name, body in POINTS.items():
        path = mixed / "conf" / "experiment" / "point" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# @package _global_\n{body}")
    procs = {"mixed": (mixed, launch(
        ["+experiment/point=glob(*)", "mesh=dp", "trainer.nonfinite=stop",
         f"hydra.sweep.dir={mixed / 'sweep'}"], mixed, devices=2, flags=["--config-dir", "conf"]))}
    try:
        import hydra_plugins.hydra_joblib_launcher  # noqa: F401 - the optional extra
    except ImportError:
        pass
    else:  # two models: each point's `name` differs, the sweep's directory is the launcher's
        procs["joblib"] = (parallel, launch(
            ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=llama_tiny,llama3_2_tiny",
             "data.batch_size=4"], parallel))
    return {name: (cwd, finish(proc)) for name, (cwd, proc) in procs.items()}


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_a_failing_point_is_recorded_and_the_others_run(sweeps):
    cwd, proc = sweeps["mixed"]
    sweep_dir = cwd / "sweep"
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "hydralearn: error: 2 point(s) of the sweep failed")
    rows = read_csv(sweep_dir / "summary.csv")
    assert [(r["+experiment/point"], r["status"]) for r in rows] == [
        ("diverge", "failed"), ("gelu", "completed"), ("odd_batch", "failed"), ("swiglu", "completed")]
    reasons = {r["+experiment/point"]: r["reason"] for r in rows}
    assert "not finite" in reasons["diverge"]
    assert "data.batch_size=3 must be divisible by the 2 devices" in reasons["odd_batch"]
    assert all(float(r["train_loss"]) > 0 for r in rows if r["status"] == "completed")
    # Flat, short point directories: the swept override only, its '/' flattened.
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == [
        f"+experiment.point={name}" for name in sorted(POINTS)]
    assert [r["run_dir"] for r in rows] == [f"+experiment.point={name}" for name in sorted(POINTS)]
    assert (sweep_dir / "summary.md").read_text().count("\n") == 2 + 4
    assert (sweep_dir / "summary.md").read_text() in proc.stdout + "\n"
    assert (sweep_dir / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_joblib_launcher_runs_points_in_parallel_processes(sweeps):
    if "joblib" not in sweeps:
        pytest.skip("hydra-joblib-launcher is not installed (pip install 'hydralearn[joblib]')")
    cwd, proc = sweeps["joblib"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Both points in the launching command's sweep directory (runs/<its name>/multirun), each
    # named by its own model, although each point's `name` is its model.
    sweep_dir = cwd / "runs" / "llama_tiny" / "multirun"
    rows = read_csv(sweep_dir / "summary.csv")
    assert [(r["model"], r["status"], r["run_dir"]) for r in rows] == [
        ("llama_tiny", "completed", "model=llama_tiny"),
        ("llama3_2_tiny", "completed", "model=llama3_2_tiny")]
    assert sorted(p.name for p in (cwd / "runs").iterdir()) == ["llama_tiny"]


def test_invalid_points_are_all_reported_before_anything_runs(tmp_path):
    proc = finish(launch(["data.batch_size=4", "model.num_kv_heads=1,3", "optim.lr=1e-3,-1",
                          f"hydra.sweep.dir={tmp_path}"], tmp_path))
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("hydralearn: error:")]
    # Point by point, named by its swept overrides; num_kv_heads=3 does not divide num_heads=2.
    assert len(errors) == 4, proc.stderr
    assert sum("[model.num_kv_heads=1 optim.lr=-1] optim.lr=-1.0 must be positive" in e for e in errors) == 1
    assert sum("[model.num_kv_heads=3 optim.lr=-1]" in e for e in errors) == 2
    assert not any(tmp_path.iterdir())
