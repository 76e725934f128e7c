"""The diff of known configs: exactly the changed keys, the right derived deltas, resume verdicts."""

import json
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from hydralearn.cli import diff as diff_cli
from hydralearn.review.diff import diff, load_side
from hydralearn.review.golden import GOLDEN_DIR
from hydralearn.config.resume_rule import Effect, classify
from hydralearn.config.compose import to_container
from hydralearn.config.flat import flatten
from hydralearn.errors import ConfigError

D, L, F, V = 64, 3, 96, 256
TINY = [f"model.d_model={D}", f"model.num_layers={L}", "model.num_heads=4", "model.num_kv_heads=2",
        f"model.ffn_dim={F}", "data=synthetic", "data.seq_len=32", "data.batch_size=8"]


@pytest.fixture(scope="module")
def ffn_and_lr():
    return diff(load_side(TINY), load_side([*TINY, "model/ffn=gelu", "optim.lr=1e-4"]))


def test_lists_exactly_the_changed_keys(ffn_and_lr):
    got = {(c.key, c.kind, c.old, c.new) for c in ffn_and_lr.changes}
    assert got == {
        ("model.ffn._target_", "changed", "hydralearn.layers.ffn.swiglu.SwiGLU",
         "hydralearn.layers.ffn.gelu.GeluMLP"),
        ("model.ffn.approximate", "added", None, True),
        ("optim.lr", "changed", 0.003, 1e-4)}
    assert {c.key: c.group for c in ffn_and_lr.changes}["model.ffn._target_"] == "model/ffn"


def test_derived_deltas(ffn_and_lr):
    deltas = {d.name: d.new - d.old for d in ffn_and_lr.deltas}
    # SwiGLU has 3 d*f matrices per layer, GELU 2: one d*f matrix per layer fewer.
    assert deltas["total_params"] == deltas["active_params"] == -L * D * F
    assert deltas["flops_per_token"] == pytest.approx(-6 * L * D * F)
    assert deltas["memory.params_bytes"] == -L * D * F * 4  # float32, one device
    assert "tokens_per_step" not in deltas and "mesh" not in deltas


def test_shape_change_cannot_resume(ffn_and_lr):
    assert not ffn_and_lr.resume.possible
    assert "params.blocks.ffn.gate" in ffn_and_lr.resume.mismatched


def test_identical_configs_exit_zero(capsys):
    with pytest.raises(SystemExit) as exit_info:
        diff_cli.main([*TINY, "--", *TINY])
    assert exit_info.value.code == 0
    assert "identical" in capsys.readouterr().out


def test_performance_change_resumes_and_json(capsys):
    with pytest.raises(SystemExit) as exit_info:
        diff_cli.main(["--json", *TINY, "--", *TINY, "remat=full", "hardware.devices_per_host=2"])
    assert exit_info.value.code == 1
    out = json.loads(capsys.readouterr().out)
    # mesh=auto: the extra device goes to data parallelism (the tiny state fits on one device).
    assert {c["key"] for c in out["changes"]} == {"remat.policy", "hardware.devices_per_host", "mesh.axes.data"}
    assert {c["effect"] for c in out["changes"]} == {"performance"}
    assert out["resume"]["possible"] and not out["identical"]
    names = {d["name"] for d in out["deltas"]}
    assert {"memory.activations_bytes", "device_count", "mesh"} <= names
    assert "memory.params_bytes" not in names  # data parallel: parameters are replicated


def test_run_directory_and_file_sides(tmp_path):
    side = load_side(TINY)
    OmegaConf.save(OmegaConf.create(to_container(side.config)), tmp_path / "resolved_config.yaml")
    assert diff(load_side([str(tmp_path)]), side).identical
    assert diff(load_side([str(tmp_path / "resolved_config.yaml")]), side).identical
    golden = load_side([str(GOLDEN_DIR / "tiny_cpu8.config.yaml")])
    assert diff(golden, load_side(["+experiment=tiny_cpu8"])).identical
    with pytest.raises(ConfigError, match="not a run directory"):
        load_side([str(tmp_path / "..")])


def test_usage_error_exits_two(capsys):
    with pytest.raises(SystemExit) as exit_info:
        diff_cli.main(TINY)
    assert exit_info.value.code == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.parametrize("key, effect", [
    ("model.d_model", Effect.SHAPE), ("model.ffn._target_", Effect.SHAPE),
    ("model.ffn.num_experts", Effect.SHAPE), ("model.ffn.top_k", Effect.TRAINING),
    ("model.rope_theta", Effect.TRAINING), ("model.compute_dtype", Effect.TRAINING),
    ("optim.lr", Effect.TRAINING), ("seed", Effect.TRAINING), ("trainer.steps", Effect.CONTINUATION),
    ("mesh.axes.fsdp", Effect.PERFORMANCE), ("remat.policy", Effect.PERFORMANCE),
    ("trainer.log_every", Effect.PERFORMANCE), ("name", Effect.PERFORMANCE)])
def test_resume_rule(key, effect):
    assert classify(key) is effect


def test_flatten_keeps_lists_and_empty_mappings_as_leaves():
    tree = {"model": {"ffn": {"dim": 8, "extra": {}}, "layers": [1, 2]}, 3: None}
    assert flatten(tree) == {"model.ffn.dim": 8, "model.ffn.extra": {}, "model.layers": [1, 2], "3": None}


# A layer registered outside hydralearn, as a plugin registers one: its `shape` field.
NEW_LAYER = """
import dataclasses
from hydralearn.config.resume_rule import classify
from hydralearn.layers.registry import register

before = classify("model.ffn.width")

@register(group="model/ffn", name="wide")
@dataclasses.dataclass(kw_only=True)
class WideMLPConfig:
    _target_: str = "wide_layers.wide.WideMLP"
    width: int = dataclasses.field(default=4, metadata={"shape": True})
    scale: float = 1.0

print(before.value, classify("model.ffn.width").value, classify("model.ffn.scale").value)
"""


def test_a_new_layers_shape_field_is_a_shape_change():
    """The rule asks the registered layer configs, so a new layer needs no edit in src/config/.
    In a fresh process: a registration cannot be undone."""
    run = subprocess.run([sys.executable, "-c", NEW_LAYER], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["training", "shape", "training"]


def test_two_finished_runs_show_what_each_achieved(tmp_path, capsys):
    """Two run directories: the config differences, then each run's summary.json figures
    (goodput's included), A -> B; a run that has not finished shows none."""
    config = OmegaConf.create(to_container(load_side(TINY).config))
    runs = {}
    for name, eval_loss, goodput in (("a", 2.5, 0.80), ("b", 2.25, 0.90)):
        runs[name] = tmp_path / name
        runs[name].mkdir()
        OmegaConf.save(config, runs[name] / "resolved_config.yaml")
        (runs[name] / "summary.json").write_text(json.dumps({
            "status": "completed", "steps": 100, "eval_loss": eval_loss, "train_loss": 2.0,
            "steps_per_s": 1.5, "sample": "text", "goodput": {"goodput": goodput, "eval_s": 3.0}}))
    with pytest.raises(SystemExit) as exit_info:
        diff_cli.main([str(runs["a"]), "--", str(runs["b"])])
    assert exit_info.value.code == 0  # the configs are identical; the outcomes are reported
    out = capsys.readouterr().out
    lines = out.splitlines()
    start = lines.index("run outcomes (A -> B, from summary.json)")
    shown = {line.split()[0]: line for line in lines[start + 1:]}
    assert list(shown) == ["eval_loss", "train_loss", "steps", "steps_per_s", "goodput"]
    assert "2.5 -> 2.25 (-0.25, x0.9)" in shown["eval_loss"]
    assert "0.8 -> 0.9 (+0.1, x1.12)" in shown["goodput"]
    (runs["b"] / "summary.json").unlink()  # B has not finished
    with pytest.raises(SystemExit):
        diff_cli.main([str(runs["a"]), "--", str(runs["b"])])
    assert "run outcomes" not in capsys.readouterr().out
