"""The real `hydralearn-train` in subprocesses: printing configs, user errors, and a tiny run.

All processes start at once (module fixture) so their import and compile costs overlap.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TINY_RUN = ["data=synthetic", "data.seq_len=32", "data.batch_size=4", "model.d_model=32",
            "model.num_layers=2", "model.num_heads=4", "model.num_kv_heads=2", "model.ffn_dim=64",
            "trainer.steps=6", "trainer.log_every=2", "trainer.eval_every=3", "trainer.eval_batches=2",
            "trainer.sample_tokens=8", "model.tie_embeddings=true"]

COMMANDS = {
    "print_default": ["--cfg", "job"],
    "print_7b": ["model=llama2_7b", "model/ffn=gelu", "--cfg", "job"],
    "unknown_key": ["model.d_modle=3", "--cfg", "job"],
    "unknown_option": ["model=llama2_7", "--cfg", "job"],
    "several_errors": ["+model.hiden=1", "trainer.steps=many", "optim.lr=fast"],
    "cross_field": ["model.num_heads=6", "model.num_kv_heads=4", "model.d_model=250"],
    "disallowed_target": ["model._target_=os.system"],
    "impossible_mesh": ["mesh.axes.fsdp=3", "data=synthetic"],
    "train": TINY_RUN,
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one device, like a user
    procs = {name: subprocess.Popen(
        [sys.executable, "-m", "hydralearn.cli.train", f"hydra.run.dir={workdir / name}", *args],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, args in COMMANDS.items()}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        out[name] = (proc.returncode, stdout, stderr, workdir / name)
    return out


def test_cfg_job_prints_the_composed_config(results):
    code, stdout, _, _ = results["print_default"]
    assert code == 0
    config = yaml.safe_load(stdout)
    assert config["model"]["d_model"] == 256 and config["model"]["ffn"]["_target_"].endswith("SwiGLU")
    code, stdout, _, _ = results["print_7b"]
    config = yaml.safe_load(stdout)
    assert code == 0 and config["model"]["d_model"] == 4096
    assert config["model"]["ffn"]["_target_"].endswith("GeluMLP")


@pytest.mark.parametrize("name, expected", [
    ("unknown_key", ["unknown key model.d_modle; did you mean 'model.d_model'?"]),
    ("unknown_option", ["model=llama2_7: no such option; did you mean 'llama2_7b'?"]),
    ("several_errors", ["unknown key model.hiden", "trainer.steps: expected int, got 'many'",
                        "optim.lr: expected float, got 'fast'"]),
    ("cross_field", ["model.d_model=250 must be divisible by model.num_heads=6",
                     "model.num_heads=6 must be divisible by model.num_kv_heads=4"]),
    ("disallowed_target", ["_target_ 'os.system' is not allowed"]),
    ("impossible_mesh", ["multiply to 3 but there are 1 devices"]),
])
def test_user_errors_exit_2_with_one_line_each_and_no_traceback(results, name, expected):
    code, stdout, stderr, run_dir = results[name]
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == len(expected), stderr
    assert all(line.startswith("hydralearn: error: ") for line in lines)
    for fragment in expected:
        assert any(fragment in line for line in lines), (fragment, lines)
    assert "Traceback" not in stderr
    assert not run_dir.exists()  # refused before Hydra made the run directory


def test_tiny_training_run_writes_its_run_directory(results):
    code, stdout, stderr, run_dir = results["train"]
    assert code == 0, stderr[-3000:]
    resolved = yaml.safe_load((run_dir / "resolved_config.yaml").read_text())
    assert resolved["mesh"]["axes"] == {"data": 1, "fsdp": 1, "tensor": 1, "expert": 1, "seq": 1}
    assert resolved["kernel"]["name"] == "xla" and resolved["model"]["tie_embeddings"] is True
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if "loss" in r]
    assert train_steps == [1, 2, 4, 6]
    assert [r["step"] for r in records if "eval_loss" in r] == [3, 6]
    assert all(r["mfu"] > 0 and r["tokens_per_s"] > 0 for r in records if "mfu" in r)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 6 and len(summary["sample"]) > 0
    assert stdout.count("held-out loss") == 1 and stdout.count("--- sample ---") == 1  # logged once
    assert Path(run_dir / ".hydra" / "overrides.yaml").exists()
