"""Every user error is one line per problem, exit 2, no traceback and nothing written, whatever
else is on the command line: the bad command lines the other tests have, each combined with a
run name, -m, --config-dir, hydra.run.dir and an experiment file (in this process: `main` with
sys.argv set). Then the refusals that come later: the weights a run starts from (before its
directory is made), a refusal after the directory was made (no empty runs/ left), and an error
raised inside Hydra's job runner (our line alone, not Hydra's "Error executing job" too).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli.in_process import train_main, tree
from tests.cli.test_cli import COMMANDS
from tests.compose.test_config import USER_ERRORS

REPO = Path(__file__).resolve().parents[2]
PREFIX = "hydralearn: error: "

# (overrides, a pattern of one of its lines, its number of lines): test_config's, test_cli's
# refusals that come before a run starts (a mesh is refused after: below), and -m's own.
BAD = [(overrides, message, 1) for overrides, message in USER_ERRORS] + [
    ([a for a in COMMANDS[name] if a not in ("--cfg", "job")], pattern, lines)
    for name, pattern, lines in [
        ("unknown_key", "unknown key model.d_modle", 1), ("unknown_option", "model=llama2_7: no such", 1),
        ("several_errors", "unknown key model.hiden", 3), ("cross_field", "must be divisible", 2),
        ("disallowed_target", "_target_ 'os.system' is not allowed", 1)]]


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working directory with an extra config directory holding a tiny experiment; no
    command line here may reach the run (it would start JAX's processes in this one)."""
    from hydralearn.runtime import run

    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "tiny.yaml").write_text(
        "# @package _global_\ntrainer:\n  steps: 2\nmodel:\n  d_model: 32\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run, "start_processes", _reached_the_run)
    return tmp_path


def _reached_the_run(config):
    raise AssertionError(f"a bad command line reached the run: {config.name}")


def extras(place: Path) -> dict[str, list[str]]:
    return {"name": ["name=x"], "multirun": ["-m"], "config_dir": ["--config-dir", str(place / "conf")],
            "run_dir": [f"hydra.run.dir={place}/new/x"],
            "experiment": ["--config-dir", str(place / "conf"), "+experiment=tiny"]}


def check(argv: list[str], pattern: str, count: int, place: Path) -> list[str]:
    before = tree(place)
    code, lines = train_main(argv)
    assert code == 2 and len(lines) == count, (argv, code, lines[-20:])
    assert all(line.startswith(PREFIX) for line in lines), (argv, lines)
    assert any(re.search(pattern, line) for line in lines), (argv, pattern, lines)
    assert tree(place) == before, (argv, sorted(map(str, tree(place) - before)))
    return lines


def combinations(place: Path, *, full: bool) -> list[tuple[list[str], str, int]]:
    """Every other bad command line (`full`: each) with every extra at once, with and without
    -m in turns (`full`: both, each extra alone, and --cfg job). The default tier's half takes in the
    unparsable override and the callback's arguments, which failed only with -m or at launch."""
    more = extras(place)
    together = [*more["name"], *more["run_dir"], *more["experiment"]]
    out = []
    for i, (bad, pattern, count) in enumerate(BAD if full else BAD[1::2]):
        # +experiment=tiny and experiment=<x> would choose another experiment: a valid run.
        compatible = {k: v for k, v in more.items()
                      if not (k == "experiment" and any(a.startswith("experiment=") for a in bad))}
        kinds = ([together + more["multirun"], together] if full else
                 [together] if i % 2 else [together + more["multirun"]])
        kinds += [*compatible.values(), ["--cfg", "job"]] if full else []  # --cfg: printing too
        if "experiment" not in compatible:
            kinds = [[a for a in k if a != "+experiment=tiny"] for k in kinds]
        out += [([*k, *bad], pattern, count) for k in kinds]
    return out


def test_bad_overrides_stay_one_line_beside_any_other_flag(place):
    for argv, pattern, count in combinations(place, full=False):
        check(argv, pattern, count, place)


@pytest.mark.slow
def test_bad_overrides_beside_each_other_flag_alone_and_all_together(place):
    for argv, pattern, count in combinations(place, full=True):
        check(argv, pattern, count, place)


TINY_LLAMA = dict(model_type="llama", vocab_size=256, hidden_size=64, intermediate_size=96,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  rms_norm_eps=1e-5, max_position_embeddings=64)


def test_init_sources_are_refused_before_the_run_directory(place):
    """A Hugging Face directory without safetensors, with pickle weights only, or whose tensors
    are not the model's, and a missing init.checkpoint: one line each, nothing written (no run
    directory, no runs/)."""
    from safetensors.numpy import save_file

    for name in ("none", "pickle", "wrong"):
        (place / name).mkdir()
        (place / name / "config.json").write_text(json.dumps(TINY_LLAMA))
    (place / "pickle" / "pytorch_model.bin").write_bytes(b"\x80\x04N.")  # pickle of None
    save_file({"model.embed_tokens.weight": np.zeros((256, 64), np.float32),
               "model.norm.weight": np.ones(64, np.float32),
               "lm_head.weight": np.zeros((256, 64), np.float32),
               "model.extra.weight": np.zeros(3, np.float32)}, str(place / "wrong" / "model.safetensors"))
    run = ["init.hf_config=adopt", "data=synthetic", "data.seq_len=24", "name=x"]
    check([f"init.hf={place / 'none'}", *run],
          r"^hydralearn: error: init.hf=.*/none: no \*.safetensors files", 1, place)
    check([f"init.hf={place / 'pickle'}", *run],
          r"only pickle weights \(pytorch_model.bin\); hydralearn reads \*.safetensors only", 1, place)
    # transformers' Llama layer has 9 tensors (q k v o, gate up down, 2 norms): 2 layers' 18
    # are missing, 1 is left over; 8 are named, then the count of the rest.
    lines = check([f"init.hf={place / 'wrong'}", *run],
                  r"init.hf=.*/wrong: no tensor model.layers.0.input_layernorm.weight", 9, place)
    assert lines[-1].endswith("wrong: ... and 11 more"), lines
    check([f"init.checkpoint={place / 'old'}@3", "data=synthetic"],
          r"init.checkpoint=.*/old@3: .*/old: not a hydralearn run directory", 1, place)


@pytest.fixture(scope="module", autouse=True)
def in_job(tmp_path_factory):
    """A real run (JAX starts) whose task raises what the trainer raises for, e.g., a full
    disk, inside Hydra's job runner. Started first: the in-process tests run meanwhile."""
    cwd = tmp_path_factory.mktemp("in_job")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {
        "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    failing = ("from hydralearn.runtime import run, errors\n"
               "def fail(*a, **k): raise errors.StorageError('the disk is full (a stand-in)')\n"
               "run.train_run = fail\nfrom hydralearn.cli.train import main; main()")
    proc = subprocess.Popen([sys.executable, "-c", failing, "data=synthetic", "model.d_model=32",
                             "model.num_layers=2", "model.num_heads=4", "model.num_kv_heads=2",
                             "hydra.run.dir=failed"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield lambda: (proc.wait(timeout=300), proc.communicate()[1], cwd)
    proc.kill()


def test_an_error_inside_the_job_is_our_one_line(in_job):
    """Not Hydra's "Error executing job with overrides: [...]" before it. (A refusal after
    the run directory was made leaves no runs/ parent: tests/cli/test_cli.py's mesh.)"""
    code, stderr, cwd = in_job()
    assert stderr.strip().splitlines() == [f"{PREFIX}the disk is full (a stand-in)"], stderr[-3000:]
    assert code == 5  # StorageError's own exit code
    assert (cwd / "failed" / ".hydra").is_dir()  # it did run inside Hydra's job runner
