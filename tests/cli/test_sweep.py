"""A real multirun: every point validated first, one run dir per point, a summary at the end."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["model.d_model=32", "model.num_layers=1", "model.num_heads=2", "model.num_kv_heads=1",
        "model.ffn_dim=32", "data=synthetic", "data.seq_len=16", "data.batch_size=4",
        "trainer.steps=3", "trainer.log_every=1", "trainer.eval_every=0", "trainer.eval_batches=1",
        "trainer.sample_tokens=0"]
TRAIN = str(Path(sys.executable).parent / "hydralearn-train")


def run(args, sweep_dir):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one device per job
    return subprocess.run([TRAIN, "-m", *TINY, *args, f"hydra.sweep.dir={sweep_dir}"],
                          capture_output=True, text=True, env=env, timeout=600)


def test_multirun_of_four_points_writes_a_summary(tmp_path):
    proc = run(["model/ffn=swiglu,gelu", "optim.lr=1e-3,3e-4"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dirs = [p.parent.parent for p in tmp_path.rglob(".hydra/overrides.yaml")]
    assert len(set(run_dirs)) == 4
    assert all((p / "summary.json").exists() and (p / "resolved_config.yaml").exists() for p in run_dirs)
    with open(tmp_path / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model/ffn"], r["optim.lr"]) for r in rows] == [
        ("swiglu", "0.001"), ("swiglu", "0.0003"), ("gelu", "0.001"), ("gelu", "0.0003")]
    assert all(r["status"] == "completed" and float(r["train_loss"]) > 0 for r in rows)
    assert sorted(tmp_path / r["run_dir"] for r in rows) == sorted(run_dirs)
    markdown = (tmp_path / "summary.md").read_text()
    assert markdown.count("\n") == 2 + 4 and markdown in proc.stdout + "\n"
    assert (tmp_path / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_invalid_points_are_all_reported_before_anything_runs(tmp_path):
    proc = run(["model.num_kv_heads=1,3", "optim.lr=1e-3,-1"], tmp_path)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("hydralearn: error:")]
    # Point by point, named by its swept overrides; num_kv_heads=3 does not divide num_heads=2.
    assert len(errors) == 4, proc.stderr
    assert sum("[model.num_kv_heads=1 optim.lr=-1] optim.lr=-1.0 must be positive" in e for e in errors) == 1
    assert sum("[model.num_kv_heads=3 optim.lr=-1]" in e for e in errors) == 2
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_joblib_launcher_when_installed(tmp_path):
    """The summary reads files only, so a launcher running jobs in other processes works too."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    proc = run(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "optim.lr=1e-3,3e-4"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "summary.md").read_text().count("\n") == 2 + 2
