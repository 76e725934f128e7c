"""The real `hydralearn-train` in subprocesses: printing configs, user errors, and a tiny run;
then `hydralearn-generate` and `hydralearn-eval` on that run.

All processes start at once (module fixture) so their import and compile costs overlap.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

# On a document source, so hydralearn-eval reads the loader's held-out batches as training did.
TINY_RUN = ["data=stdlib", "data.max_bytes=300000", "data.heldout_percent=20", "data.seq_len=32", "data.batch_size=4", "model.d_model=32",
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
    # Refused once its run directory exists: under runs/, which it must not leave behind.
    "impossible_mesh": ["mesh.axes.fsdp=3", "data=synthetic", "hydra.run.dir=runs/impossible_mesh"],
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
    assert not (run_dir.parent / "runs").exists()  # nor a parent made for it


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


def _tool(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """A console script of this environment, on one device like a user's."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return subprocess.run([str(Path(sys.executable).parent / name), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_generate_streams_the_end_of_run_samples_text(results):
    """hydralearn-generate on the run's newest checkpoint with the sample's prompt, length and
    sampling: the trainer's in-jit loop and the CLI's token-by-token stream give the same text.
    The run is named relative to the working directory, as users do (orbax wants absolute paths)."""
    run_dir = results["train"][3]
    summary = json.loads((run_dir / "summary.json").read_text())
    out = _tool("hydralearn-generate", run_dir.name, "--prompt", "def ", "--max-new-tokens", "8",
                "--temperature", "0.8", "--seed", "0", cwd=run_dir.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == summary["sample"] + "\n"


def test_eval_equals_the_training_time_eval(results, capsys):
    from hydralearn.cli import eval as eval_cli

    run_dir = results["train"][3]
    eval_cli.main([str(run_dir)])
    printed = json.loads(capsys.readouterr().out)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert printed["loss"] == pytest.approx(summary["eval_loss"], rel=1e-6)
    tokens = 2 * 4 * 32  # trainer.eval_batches x data.batch_size x data.seq_len, one byte each
    assert (printed["tokens"], printed["bytes"], printed["step"]) == (tokens, tokens, 6)
    assert printed["bits_per_byte"] == pytest.approx(printed["loss"] / math.log(2) * tokens / tokens)
    saved = json.loads((run_dir / "checkpoints" / "6" / "eval.json").read_text())
    assert saved[printed["data"]]["loss"] == printed["loss"]


def test_perplexity_of_a_file(results, tmp_path, capsys):
    """Loss and bits per byte of a file against numpy on the model's logits: windows of
    data.seq_len, every byte after the first predicted once."""
    from flax import nnx
    from hydralearn.cli import eval as eval_cli
    from hydralearn.compose.build import abstract_params
    from hydralearn.cli.target import load

    run_dir = results["train"][3]
    text = "naïve café: " + "def f(x):\n    return x * 2\n" * 3  # 90 bytes, 2 of them 2-byte chars
    (tmp_path / "notes.txt").write_text(text)
    eval_cli.main([str(run_dir), "--perplexity-of", str(tmp_path / "notes.txt")])
    printed = json.loads(capsys.readouterr().out)
    data = np.frombuffer(text.encode(), np.uint8).astype(np.int32)
    windows = [data[i:i + 33] for i in range(0, len(data) - 1, 32)]  # seq_len 32, + 1 target
    model = load(str(run_dir))
    forward = nnx.merge(abstract_params(model.config)[0], model.params)
    nats = 0.0
    for w in windows:
        logits = np.asarray(forward(w[None, :-1]).logits[0], np.float64)
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        nats -= log_probs[np.arange(len(w) - 1), w[1:]].sum()
    predicted = len(text.encode()) - 1
    assert printed["tokens"] == printed["bytes"] == predicted
    assert printed["loss"] == pytest.approx(nats / predicted, rel=1e-5)
    assert printed["bits_per_byte"] == pytest.approx(nats / predicted / math.log(2), rel=1e-5)


@pytest.mark.parametrize("tool, args, expected", [
    ("generate", ["{missing}", "--prompt", "x"], "no such directory"),
    ("generate", ["{run}@99", "--prompt", "x"], "no checkpoint at step 99; available steps: 6"),
    ("generate", ["{run}@last", "--prompt", "x"], "the step after '@' must be a number"),
    ("generate", ["{run}", "--prompt", "x", "--top-p", "2"], "--top-p=2.0 must be in (0, 1]"),
    ("generate", ["{run}", "--promt", "x"], "one of the arguments --prompt --prompts-file is required"),
    ("generate", ["{run}", "--prompts-file", "{missing}"], "no such file"),
    ("eval", ["{run}", "model.d_model=3"], "only the data group can be overridden"),
    ("eval", ["{run}", "data.seq_lne=3"], "unknown key data.seq_lne"),
    ("eval", ["{run}", "data=nope"], "data=nope: no such option"),
])
def test_generate_and_eval_user_errors(results, tool, args, expected, capsys, tmp_path):
    from hydralearn.cli import eval as eval_cli, generate

    run_dir = results["train"][3]
    args = [a.format(run=run_dir, missing=tmp_path / "missing") for a in args]
    with pytest.raises(SystemExit) as exit_:
        (generate if tool == "generate" else eval_cli).main(args)
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("hydralearn: error: ") and expected in lines[0], lines


def test_generate_and_eval_answer_help_and_flag_errors_without_jax(tmp_path):
    """As hydralearn-train's --help and config errors: nothing numeric is imported to say them."""
    bin_dir = Path(sys.executable).parent
    commands = [["hydralearn-generate", "--help"], ["hydralearn-eval", "--help"],
                ["hydralearn-generate", str(tmp_path / "missing"), "--prompt", "x"],
                ["hydralearn-generate", str(tmp_path), "--prompt", "x", "--top-k", "-1"],
                ["hydralearn-eval", str(tmp_path / "missing")]]
    env = os.environ | {"PYTHONPROFILEIMPORTTIME": "1"}
    procs = [subprocess.Popen([str(bin_dir / argv[0]), *argv[1:]], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for argv in commands]
    for argv, proc in zip(commands, procs):
        stdout, stderr = proc.communicate(timeout=120)
        imported = {line.rpartition("|")[2].strip().split(".")[0] for line in stderr.splitlines()
                    if line.startswith("import time:")}
        errors = [line for line in stderr.splitlines() if line.startswith("hydralearn: error: ")]
        assert "hydralearn" in imported, argv  # the import profile was read
        assert not imported & {"jax", "jaxlib", "numpy", "flax", "optax", "orbax", "torch"}, argv
        assert (proc.returncode, len(errors)) == ((0, 0) if "--help" in argv else (2, 1)), (argv, stderr[-500:])
