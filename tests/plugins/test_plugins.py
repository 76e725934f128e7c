"""Third-party layers without editing hydralearn (docs/plugins.md).

The package in relu2_pkg/ (its own pyproject with a `hydralearn.plugins` entry point, a
squared-ReLU FFN, its jax-free schema, its YAML option and a Hydra SearchPathPlugin) is copied
to a temporary directory and installed there with pip; every tool then uses it as a user
would, in real subprocesses. The same layer, not installed but listed in a config's
`plugins:`, is the second variant. All processes start at once (they overlap on a loaded
machine); only those that need the installed package wait for pip.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hydralearn.config import compose as compose_config
from hydralearn.errors import ConfigError
from hydralearn.layers import registry
from tests.conftest import TINY

# The slow tier: every test here waits for pip or starts subprocesses.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PACKAGE = Path(__file__).resolve().parent / "relu2_pkg"
TARGET = "relu2_layers.relu2.Relu2MLP"
D_MODEL, NUM_LAYERS, FFN_DIM, NUM_HEADS, NUM_KV_HEADS, VOCAB = 32, 2, 64, 4, 2, 256
RUN = [*TINY, "trainer.steps=2", "trainer.eval_every=0", "trainer.eval_batches=1",
       "trainer.sample_tokens=0"]
# Compiling the tiny step without LLVM's optimisations halves the run's CPU time; what is
# tested here is that the plugin's layer trains, not how fast.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"

# The `plugins:` variant: the user's own config directory holds the option (it names the
# layer directly: the schema is registered only once `plugins:` is read, after composition)
# and an experiment that lists the module.
USER_OPTION = f"_target_: {TARGET}\nscale: 0.5\n"
USER_EXPERIMENT = """# @package _global_
defaults:
  - override /model/ffn: relu2
plugins: [relu2_layers.relu2_config]
"""
# An installed package whose entry point cannot be imported.
BROKEN_ENTRY_POINTS = "[hydralearn.plugins]\nbroken = broken_layers.config\n"


def tool(name: str) -> list[str]:
    """`hydralearn-<name>`, run by this interpreter."""
    return [sys.executable, "-m", f"hydralearn.cli.{name}"]


@dataclasses.dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def _start(command: list[str], path: Path | None, cwd: Path, xla_flags: str = "") -> subprocess.Popen:
    """`command` with `path` as PYTHONPATH (one CPU device, as a user would have)."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PYTHONPATH")}
    env |= {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _communicate(proc: subprocess.Popen) -> Result:
    stdout, stderr = proc.communicate(timeout=600)
    return Result(proc.returncode, stdout, stderr)


def _write_user_files(tmp: Path) -> tuple[Path, Path, Path]:
    """The layer's modules alone on a path (no entry point), the user's config directory, and
    a package whose entry point is broken."""
    user_path = tmp / "user_path"
    shutil.copytree(PACKAGE / "relu2_layers", user_path / "relu2_layers",
                    ignore=shutil.ignore_patterns("conf"))
    user_conf = tmp / "user_conf"
    (user_conf / "model" / "ffn").mkdir(parents=True)
    (user_conf / "model" / "ffn" / "relu2.yaml").write_text(USER_OPTION)
    (user_conf / "experiment").mkdir()
    (user_conf / "experiment" / "relu2.yaml").write_text(USER_EXPERIMENT)
    # What pip writes for a package's entry points: importlib.metadata reads it from the path.
    broken = tmp / "broken_path"
    (broken / "broken_layers-0.1.dist-info").mkdir(parents=True)
    (broken / "broken_layers-0.1.dist-info" / "METADATA").write_text("Name: broken-layers\nVersion: 0.1\n")
    (broken / "broken_layers-0.1.dist-info" / "entry_points.txt").write_text(BROKEN_ENTRY_POINTS)
    (broken / "broken_layers").mkdir()
    (broken / "broken_layers" / "__init__.py").write_text("")
    (broken / "broken_layers" / "config.py").write_text("import jax_layers_that_do_not_exist\n")
    return user_path, user_conf, broken


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("plugins")


@pytest.fixture(scope="module")
def results(tmp) -> dict[str, Result]:
    source = tmp / "relu2_pkg"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__"))
    build_copy = tmp / "build"  # pip builds in its source tree; loc_complexity reads `source`
    shutil.copytree(source, build_copy)
    site = tmp / "site"
    pip = _start([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                  "--no-index", "--target", str(site), str(build_copy)], None, tmp)
    user_path, user_conf, broken = _write_user_files(tmp)
    listed = {
        "listed": (tool("train") + ["--config-dir", str(user_conf), "+experiment=relu2", "--cfg", "job"],
                   user_path),
        "listed_typo": (tool("train") + ["--config-dir", str(user_conf), "+experiment=relu2",
                                         "model.ffn.scael=2", "--cfg", "job"], user_path),
        "unlisted": (tool("train") + ["--config-dir", str(user_conf), "model/ffn=relu2", "--cfg", "job"],
                     user_path),
        "unregistered": (tool("train") + ["plugins=[relu2_layers.relu2_config]",
                                          "model.ffn._target_=relu2_layers.relu2.nnx.Linear",
                                          "--cfg", "job"], user_path),
        "broken_entry_point": (tool("train") + ["--cfg", "job"], broken),
        "broken_entry_point_schema": (tool("schema"), broken),
        "loc": ([sys.executable, str(REPO / "scripts" / "loc_complexity.py"), "--json",
                 "--plugin-root", str(source)], None),
    }
    procs = {name: _start(command, path, tmp) for name, (command, path) in listed.items()}
    installing = _communicate(pip)
    assert installing.code == 0, installing.stderr
    procs["train"] = _start(tool("train") + ["model/ffn=relu2", "model.ffn.scale=0.5", *RUN,
                                             f"hydra.run.dir={tmp / 'run'}"], site, tmp, FAST_COMPILE)
    installed = {
        "plan": tool("plan") + ["--json", "model/ffn=relu2", *TINY],
        "diff": tool("diff") + ["--json", *TINY, "--", *TINY, "model/ffn=relu2"],
        "schema": tool("schema"),
    }
    procs |= {name: _start(command, site, tmp) for name, command in installed.items()}
    return {name: _communicate(proc) for name, proc in procs.items()}


def params_without_ffn() -> int:
    """Embedding, untied head, final norm, and per layer attention and two norms (llama_tiny
    shrunk by TINY)."""
    head_dim = D_MODEL // NUM_HEADS
    attention = 2 * D_MODEL * NUM_HEADS * head_dim + 2 * D_MODEL * NUM_KV_HEADS * head_dim
    return 2 * VOCAB * D_MODEL + D_MODEL + NUM_LAYERS * (attention + 2 * D_MODEL)


def test_installed_plugin_trains_from_one_override(results, tmp):
    run = results["train"]
    assert run.code == 0, run.stderr[-3000:]
    resolved = yaml.safe_load((tmp / "run" / "resolved_config.yaml").read_text())
    assert resolved["model"]["ffn"] == {"_target_": TARGET, "scale": 0.5}
    relu2_params = params_without_ffn() + NUM_LAYERS * 2 * D_MODEL * FFN_DIM  # up, down
    assert f"{relu2_params:,} parameters" in run.stdout
    records = [json.loads(line) for line in (tmp / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 2 and all(0 < loss < 10 for loss in losses)


def test_plan_and_diff_see_the_plugin_layer(results):
    plan, diff = results["plan"], results["diff"]
    assert plan.code == 0, plan.stderr
    assert json.loads(plan.stdout)["total_params"] == params_without_ffn() + NUM_LAYERS * 2 * D_MODEL * FFN_DIM
    assert diff.code == 1, diff.stderr  # 1: the configs differ
    changes = {c["key"]: c for c in json.loads(diff.stdout)["changes"]}
    assert changes["model.ffn._target_"]["new"] == TARGET
    deltas = {d["name"]: d for d in json.loads(diff.stdout)["deltas"]}
    total = deltas["total_params"]
    assert total["old"] - total["new"] == NUM_LAYERS * D_MODEL * FFN_DIM  # SwiGLU's gate


def test_json_schema_lists_the_plugin_layer(results):
    schema = results["schema"]
    assert schema.code == 0, schema.stderr
    defs = json.loads(schema.stdout)["$defs"]
    (name,) = [k for k, v in defs.items() if v.get("properties", {}).get("_target_", {}).get("const") == TARGET]
    assert {"_target_", "scale"} <= set(defs[name]["properties"])


def test_listed_plugin_module_is_checked_by_its_schema(results):
    """Listed in a user's experiment, the module registers its layer: the user's option is
    accepted, and typed by the layer's schema (a typo is named with the closest field)."""
    listed = results["listed"]
    assert listed.code == 0, listed.stderr
    config = yaml.safe_load(listed.stdout)
    assert config["plugins"] == ["relu2_layers.relu2_config"]
    assert config["model"]["ffn"] == {"_target_": TARGET, "scale": 0.5}
    typo = results["listed_typo"]
    assert typo.code == 2
    assert typo.stderr.strip() == ("hydralearn: error: unknown key model.ffn.scael; did you mean "
                                   "'model.ffn.scale'?")


@pytest.mark.parametrize("name, message", [
    ("unlisted", f"model.ffn: _target_ '{TARGET}' is not allowed"),
    ("unregistered", "model.ffn: _target_ 'relu2_layers.relu2.nnx.Linear' is not allowed"),
    *((name, "plugin 'broken = broken_layers.config' (entry point group hydralearn.plugins of "
       "broken-layers) cannot be imported: ModuleNotFoundError: No module named "
       "'jax_layers_that_do_not_exist'") for name in ("broken_entry_point", "broken_entry_point_schema")),
])
def test_refused_in_one_line(results, name, message):
    """Importable is not allowed: only what a package's entry point or the config's `plugins:`
    registered may be built; a broken plugin is named with its cause."""
    result = results[name]
    assert result.code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hydralearn: error: "), result.stderr
    assert message in lines[0]


def test_loc_complexity_of_a_plugin_is_zero_inside_the_package(results):
    loc = results["loc"]
    assert loc.code == 0, loc.stderr
    (row,) = json.loads(loc.stdout)
    presets = len(list((REPO / "conf" / "model").glob("*.yaml")))
    assert (row["feature"], row["lines_elsewhere"], row["per_preset_lines"], row["presets_ok"]) == (
        "relu2", 0, 0, presets)
    assert row["own_lines"] > 0


def test_unknown_plugin_module_is_a_user_error():
    with pytest.raises(ConfigError, match=r"plugins: cannot import 'no_such_layers': "
                                          r"ModuleNotFoundError: No module named 'no_such_layers'"):
        compose_config.load(["plugins=[no_such_layers]"])


@pytest.mark.parametrize("target, name, taken", [
    ("hydralearn.layers.ffn.moe.MoE", "moe_again", "_target_ 'hydralearn.layers.ffn.moe.MoE'"),
    ("my_layers.MoE", "moe", "model/ffn/base_moe"),
])
def test_a_plugin_cannot_replace_a_registered_layer(target, name, taken):
    config = dataclasses.make_dataclass("MyMoEConfig", [("_target_", str, target)], kw_only=True)
    with pytest.raises(ValueError, match=f"{taken} is already registered by hydralearn.layers.ffn"):
        registry.register(group="model/ffn", name=name)(config)
    assert registry.config_class("hydralearn.layers.ffn.moe.MoE").__name__ == "MoEConfig"
