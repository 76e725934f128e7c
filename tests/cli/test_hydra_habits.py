"""Hydra's habits on every tool, in real `hydralearn-*` processes: its flags, a user's own config
directory (`--config-dir`, `-cn`, `-cp`, `hydra.searchpath`), the override grammar of sweeps,
Hydra's own output, and what each command imports before it answers.

No command here trains: all start at once (module fixture) so their start-up costs overlap,
each with Python's import profile on (PYTHONPROFILEIMPORTTIME, as `python -X importtime`).
"""

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hydralearn.cli import hydra_args

BIN = Path(sys.executable).parent
# A new model preset and a new primary config that extends the package's train.yaml.
USER_FILES = {
    "model/my_tiny.yaml": "defaults: [llama_tiny, _self_]\n"
                          "d_model: 64\nnum_layers: 2\nnum_heads: 4\nnum_kv_heads: 2\nffn_dim: 128\n",
    "my_train.yaml": "defaults:\n  - train\n  - override model: my_tiny\n  - _self_\nname: mine\nseed: 7\n",
    "experiment/lr_sweep.yaml": "# @package _global_\n"
                                "hydra:\n  sweeper:\n    params:\n      optim.lr: 1e-3,-1\n",
}
# my_tiny's parameters: untied embedding and head, 2 x (q, k, v, o, SwiGLU, 2 norms), final norm.
MY_TINY_PARAMS = 2 * 256 * 64 + 2 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 128 + 2 * 64) + 64


def commands(user: Path) -> dict[str, list[str]]:
    train, plan, diff = "hydralearn-train", "hydralearn-plan", "hydralearn-diff"
    searchpath = f"hydra.searchpath=[file://{user}]"
    return {
        "hydra_help": [train, "--hydra-help"],
        "help": [train, "--help"],
        "help_config_dir": [train, "--config-dir", str(user), "--help"],
        "help_flags": [train, "--help", "hydra.help.template=$FLAGS_HELP"],
        "info": [train, "--info"],
        "typo": [train, "model.d_modle=3"],
        "cfg_config_dir": [train, "--config-dir", str(user), "model=my_tiny", "--cfg", "job"],
        "cfg_cn": [train, "--config-dir", str(user), "-cn", "my_train", "--cfg", "job"],
        "cfg_cp": [train, "-cp", str(user), "-cn", "my_train", "--cfg", "job"],
        "cfg_searchpath": [train, searchpath, "model=my_tiny", "--cfg", "job"],
        "run_cn": [train, "--config-dir", str(user), "-cn", "my_train", "model.num_heads=3",
                   f"hydra.run.dir={user.parent / 'never'}"],
        "multirun_cp": [train, "-m", "-cp", str(user), "-cn", "my_train", "model.num_heads=3,4",
                        "optim.lr=-1"],
        "plan": [plan, "-cp", str(user), "-cn", "my_train", "--top", "0"],
        "explain": [plan, "--explain", "model.d_model", searchpath, "model=my_tiny"],
        "diff": [diff, "--config-dir", str(user), "-cn", "my_train", "--", "model.d_model=128",
                 "seed=8"],
        "glob_schemas": [train, "-m", "model/ffn=glob(*)"],
        "glob": [train, "-m", "model/ffn=glob(*,exclude=base_*)", "optim.lr=-1"],
        "tag": [train, "-m", "model/ffn=tag(cheap,choice(gelu,swiglu))", "optim.lr=-1"],
        "range": [train, "-m", "trainer.steps=range(1,3)", "optim.lr=-1"],
        "interval": [train, "-m", "optim.lr=interval(0.1,0.2)"],
        "sweeper_params": [train, "-m", "--config-dir", str(user), "+experiment=lr_sweep",
                           "trainer.steps=0"],
        "cfg_multirun": [train, "-m", "--cfg", "job", "optim.lr=1e-3,3e-4"],
        "rerun": [train, "--experimental-rerun", str(user.parent / "config.pickle")],
    }


class Result:
    def __init__(self, proc: subprocess.Popen):
        stdout, stderr = proc.communicate(timeout=300)
        self.code, self.out = proc.returncode, stdout
        lines = stderr.splitlines()
        self.err = "\n".join(line for line in lines if not line.startswith("import time:"))
        self.imported = {line.rpartition("|")[2].strip().split(".")[0] for line in lines
                         if line.startswith("import time:")}

    def errors(self) -> list[str]:
        assert "Traceback" not in self.err, self.err
        return [line.removeprefix("hydralearn: error: ") for line in self.err.splitlines()
                if line.startswith("hydralearn: error: ")]


@pytest.fixture(scope="module")
def user_conf(tmp_path_factory) -> Path:
    user = tmp_path_factory.mktemp("habits") / "my_conf"
    for name, text in USER_FILES.items():
        (user / name).parent.mkdir(parents=True, exist_ok=True)
        (user / name).write_text(text)
    # A pickle that, once loaded, creates a file: the code a rerun would run.
    payload = pickle.dumps(_Trap(user.parent / "unpickled"))
    (user.parent / "config.pickle").write_bytes(payload)
    return user


class _Trap:
    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (self.path,)


@pytest.fixture(scope="module")
def results(user_conf) -> dict[str, Result]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"PYTHONPROFILEIMPORTTIME": "1"}
    procs = {name: subprocess.Popen([str(BIN / argv[0]), *argv[1:]], cwd=user_conf.parent, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, argv in commands(user_conf).items()}
    return {name: Result(proc) for name, proc in procs.items()}


def test_flags_are_exactly_hydras(results):
    """hydra_args declares the flags Hydra's own help lists, with the same choices."""
    hydra_help = results["hydra_help"].out
    listed = [line.split(" : ")[0] for line in hydra_help.split("== Flags ==")[1].splitlines()
              if line.startswith("-") and " : " in line]
    theirs = {frozenset(flags.split(",")) for flags in listed}
    ours_help = hydra_args.parser("hydralearn-train").format_help().split("options:")[1]
    ours = {frozenset(re.findall(r"(?:^|, )(-{1,2}[a-z][a-z-]*)", line.strip()))
            for line in ours_help.splitlines() if line.strip().startswith("-")}
    assert ours == theirs and len(theirs) == 14
    for flag in ("--cfg", "--info"):
        (hydra_choices,) = re.findall(rf"{flag},-\w+ : .*\[([a-z|-]+)\]", hydra_help)
        (our_choices,) = set(re.findall(rf"{flag} \[?\{{([a-z,-]+)\}}", ours_help))
        assert our_choices.split(",") == hydra_choices.split("|")


def test_help_lists_the_users_options_and_leaves_hydras_placeholders_to_hydra(results):
    listed = results["help_config_dir"]
    assert listed.code == 0, listed.err
    (model,) = [line for line in listed.out.splitlines() if line.startswith("model: ")]
    assert "my_tiny" in model.split(": ")[1].split(", ") and "base_" not in listed.out
    assert "experiment: " in listed.out and "lr_sweep" in listed.out
    flags = results["help_flags"]  # $FLAGS_HELP comes from Hydra's own parser: Hydra's help
    assert flags.code == 0, flags.err
    assert "--cfg,-c : Show config instead of running [job|hydra|all]" in flags.out


def test_hydra_prints_its_own_output_once(results):
    info = results["info"]
    assert info.code == 0, info.err
    for header in ("Hydra 1.3.8", "Installed Hydra Plugins", "Config search path", "Defaults Tree"):
        assert info.out.count(header) == 1, info.out


def test_rerun_never_unpickles(results, user_conf):
    """Hydra's --experimental-rerun loads a pickle, past the `_target_` allowlist: refused."""
    rerun = results["rerun"]
    assert rerun.code == 2 and len(rerun.errors()) == 1 and "--experimental-rerun" in rerun.errors()[0]
    assert not (user_conf.parent / "unpickled").exists()


@pytest.mark.parametrize("name", ["cfg_config_dir", "cfg_cn", "cfg_cp", "cfg_searchpath"])
def test_cfg_composes_from_the_users_config_dir(results, name):
    result = results[name]
    assert result.code == 0, result.err
    config = yaml.safe_load(result.out)
    assert config["model"]["d_model"] == 64 and config["model"]["ffn_dim"] == 128
    # -cn: the user's primary config (name, seed) over the package's train.yaml
    assert (config["name"], config["seed"]) == (("mine", 7) if name in ("cfg_cn", "cfg_cp") else
                                                ("${hydra:runtime.choices.model}", 0))


def test_pre_run_validation_uses_the_users_primary_config(results, user_conf):
    assert results["run_cn"].code == 2
    assert "model.d_model=64 must be divisible by model.num_heads=3" in results["run_cn"].errors()[0]
    assert not (user_conf.parent / "never").exists()
    sweep = results["multirun_cp"]
    assert sweep.code == 2
    assert sum("[model.num_heads=3] model.d_model=64 must be divisible by model.num_heads=3" in e
               for e in sweep.errors()) == 1
    assert sum(e.startswith("[model.num_heads=4] optim.lr=-1.0 must be positive") for e in sweep.errors()) == 1


def test_plan_explain_and_diff_read_the_users_config_dir(results, user_conf):
    plan = results["plan"]
    assert plan.code == 0, plan.err
    assert plan.out.startswith("plan: mine on 1 x 1 cpu")
    assert f"parameters           {MY_TINY_PARAMS / 1e3:.2f}K ({MY_TINY_PARAMS:,}) total" in plan.out
    explain = results["explain"]
    assert explain.code == 0, explain.err
    assert f"{user_conf / 'model' / 'my_tiny.yaml'}: 64 (sets it; command-line override model=my_tiny)" in explain.out
    assert "conf/model/llama_tiny.yaml: 256 (overridden later" in explain.out
    diff = results["diff"]
    assert diff.code == 1, diff.err
    changed = [line.strip() for line in diff.out.splitlines() if line.startswith("    ")]
    assert changed == ["~ model.d_model: 64 -> 128  [shape]", "~ seed: 7 -> 8  [training]"]


@pytest.mark.parametrize("name, points", [
    ("glob", ["model/ffn=gelu", "model/ffn=moe", "model/ffn=moe_qwen3", "model/ffn=swiglu"]),
    ("tag", ["model/ffn=gelu", "model/ffn=swiglu"]),
    ("range", ["trainer.steps=1", "trainer.steps=2"]),
])
def test_sweep_grammar_expands_every_point_before_launch(results, name, points):
    """Every point is checked before any runs: a bad shared override names each of them."""
    result = results[name]
    assert result.code == 2
    assert result.errors() == [f"[{p}] optim.lr=-1.0 must be positive" for p in points]


def test_sweeper_params_in_an_experiment_file(results):
    errors = results["sweeper_params"].errors()
    assert results["sweeper_params"].code == 2
    assert sorted(errors) == ["[optim.lr=-1] optim.lr=-1.0 must be positive",
                              "[optim.lr=-1] trainer.steps=0 must be positive",
                              "[optim.lr=0.001] trainer.steps=0 must be positive"]


@pytest.mark.parametrize("name, fragment", [
    ("glob_schemas", "the glob also matches the schemas base_gelu, base_moe, base_swiglu; leave "
                     "them out with model/ffn='glob(*,exclude=base_*)'"),
    ("interval", "an interval sweep needs a sweeper plugin"),
    ("cfg_multirun", "--multirun and --cfg cannot be combined"),
])
def test_sweeps_the_basic_sweeper_cannot_run_are_refused_in_one_line(results, name, fragment):
    result = results[name]
    assert result.code == 2 and len(result.errors()) == 1 and fragment in result.errors()[0]


HEAVY = {"torch", "tensorboardX"}
NUMERIC = HEAVY | {"jax", "jaxlib", "numpy", "flax", "optax", "orbax"}


@pytest.mark.parametrize("name, banned", [
    ("cfg_cn", NUMERIC), ("help", NUMERIC), ("typo", NUMERIC), ("run_cn", NUMERIC),
    ("multirun_cp", NUMERIC), ("info", HEAVY), ("plan", HEAVY), ("explain", HEAVY),
    ("diff", HEAVY),
])
def test_start_up_imports_only_what_the_command_needs(results, name, banned):
    result = results[name]
    assert "hydra" in result.imported  # the import profile was read
    assert not result.imported & banned, sorted(result.imported & banned)
