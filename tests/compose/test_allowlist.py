"""No code runs from a config that nobody allowlisted (src/config/allowlist.py, docs/config.md).

Every place where a config can name code to run gets a trap: a callable that would write a
file. The traps come once from command-line overrides and once from an experiment in a
user's --config-dir, for a single run, a multirun and Hydra's --help, each in a real
`hydralearn-train` process: every one must exit 2 naming each place, write no file and leave
no run directory. A bare Hydra app given the same traps shows that they are live.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hydralearn.config import allowlist

# A module whose import writes a file: what `ext://trap_module.stream` would import.
TRAP_MODULE = "import pathlib, sys\npathlib.Path({path!r}).write_text('imported')\nstream = sys.stderr\n"
# (name, overrides, expected line); {w} is the directory the traps would write into.
OVERRIDE_TRAPS = [
    ("callback", ["+hydra.callbacks.trap={{_target_: builtins.open, _args_: [{w}/callback, w]}}"],
     "hydra.callbacks.trap: _target_ 'builtins.open' is not allowed"),
    ("in_callback", ["+hydra.callbacks.sweep_summary.trap={{_target_: builtins.open, _args_: [{w}/in_callback, w]}}"],
     "hydra.callbacks.sweep_summary.trap: _target_ 'builtins.open' is not allowed"),
    ("launcher", ["hydra.launcher._target_=builtins.open", "+hydra.launcher._args_=[{w}/launcher, w]"],
     "hydra.launcher: _target_ 'builtins.open' is not allowed"),
    ("in_launcher", ["+hydra.launcher.trap={{_target_: builtins.open, _args_: [{w}/in_launcher, w]}}"],
     "hydra.launcher.trap: _target_ 'builtins.open' is not allowed"),
    ("sweeper", ["hydra.sweeper._target_=builtins.open", "+hydra.sweeper._args_=[{w}/sweeper, w]"],
     "hydra.sweeper: _target_ 'builtins.open' is not allowed"),
    ("in_sweeper", ["+hydra.sweeper.trap={{_target_: builtins.open, _args_: [{w}/in_sweeper, w]}}"],
     "hydra.sweeper.trap: _target_ 'builtins.open' is not allowed"),
    ("handler", ["+hydra.job_logging.handlers.trap={{class: io.FileIO, file: {w}/handler, mode: w}}"],
     "hydra.job_logging.handlers.trap: class 'io.FileIO' is not allowed"),
    ("ext", ["hydra.job_logging.handlers.console.stream=ext://trap_module.stream"],
     "hydra.job_logging.handlers.console.stream: 'ext://trap_module.stream' is not allowed"),
    ("hydra_handler", ["+hydra.hydra_logging.handlers.trap={{class: io.FileIO, file: {w}/hydra_handler, mode: w}}"],
     "hydra.hydra_logging.handlers.trap: class 'io.FileIO' is not allowed"),
    ("env", ["+hydra.job.env_set.PYTHONPATH={w}"], "hydra.job.env_set.PYTHONPATH is not allowed"),
    ("model", ["model.ffn._target_=builtins.open"], "model.ffn: _target_ 'builtins.open' is not allowed"),
]
# The same places set by files of a user's config directory ({w} as above).
USER_FILES = {
    "hydra/launcher/trap.yaml": "_target_: builtins.open\n_args_: [{w}/launcher, w]\n",
    "hydra/sweeper/trap.yaml": "_target_: builtins.open\n_args_: [{w}/sweeper, w]\n",
    "model/ffn/trap.yaml": "_target_: builtins.open\n_args_: [{w}/model, w]\n",
    "experiment/trap.yaml": """# @package _global_
defaults:
  - override /hydra/launcher: trap
  - override /hydra/sweeper: trap
  - override /model/ffn: trap
hydra:
  callbacks:
    trap: {{_target_: builtins.open, _args_: [{w}/callback, w]}}
    sweep_summary:
      trap: {{_target_: builtins.open, _args_: [{w}/in_callback, w]}}
  job_logging:
    handlers:
      console: {{stream: ext://trap_module.stream}}
      trap: {{class: io.FileIO, file: {w}/handler, mode: w}}
    formatters:
      trap: {{"()": builtins.open, file: {w}/formatter, mode: w}}
  hydra_logging:
    filters:
      trap: {{"()": builtins.open, file: {w}/filter, mode: w}}
  job:
    env_set: {{LD_PRELOAD: {w}/trap.so}}
""",
}
FILE_EXPECTED = [
    "hydra.launcher: _target_ 'builtins.open' is not allowed",
    "hydra.sweeper: _target_ 'builtins.open' is not allowed",
    "hydra.callbacks.trap: _target_ 'builtins.open' is not allowed",
    "hydra.callbacks.sweep_summary.trap: _target_ 'builtins.open' is not allowed",
    "hydra.job_logging.handlers.console.stream: 'ext://trap_module.stream' is not allowed",
    "hydra.job_logging.handlers.trap: class 'io.FileIO' is not allowed",
    "hydra.job_logging.formatters.trap: () 'builtins.open' is not allowed",
    "hydra.hydra_logging.filters.trap: () 'builtins.open' is not allowed",
    "hydra.job.env_set.LD_PRELOAD is not allowed",
    "model.ffn: _target_ 'builtins.open' is not allowed",
]
HYDRA_APP = """import hydra

@hydra.main(config_path=None, config_name=None, version_base="1.3")
def main(cfg):
    pass

main()
"""
LIVE = {"callback", "in_callback", "in_launcher", "in_sweeper", "handler", "ext", "hydra_handler"}


def _overrides(written: Path, names=None) -> list[str]:
    return [o.format(w=written) for name, overrides, _ in OVERRIDE_TRAPS
            if names is None or name in names for o in overrides]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("allowlist")
    written, control_written = tmp / "written", tmp / "control_written"
    written.mkdir()
    control_written.mkdir()
    (tmp / "trap_module.py").write_text(TRAP_MODULE.format(path=str(written / "ext")))
    (tmp / "control" / "trap_module.py").parent.mkdir()
    (tmp / "control" / "trap_module.py").write_text(TRAP_MODULE.format(path=str(control_written / "ext")))
    (tmp / "control" / "app.py").write_text(HYDRA_APP)
    conf = tmp / "user_conf"
    for name, text in USER_FILES.items():
        (conf / name).parent.mkdir(parents=True, exist_ok=True)
        (conf / name).write_text(text.format(w=written))
    train = [sys.executable, "-m", "hydralearn.cli.train"]
    user = ["--config-dir", str(conf), "+experiment=trap"]
    trap = f"+hydra.hydra_logging.handlers.trap={{class: io.FileIO, file: {written}/help, mode: w}}"
    commands = {
        "override_run": (train + _overrides(written) + [f"hydra.run.dir={tmp}/run"], tmp),
        "override_multirun": (train + ["-m", *_overrides(written), "seed=0,1",
                                       f"hydra.sweep.dir={tmp}/sweep"], tmp),
        "file_run": (train + user + [f"hydra.run.dir={tmp}/file_run"], tmp),
        "file_multirun": (train + ["-m", *user, "seed=0,1", f"hydra.sweep.dir={tmp}/file_sweep"], tmp),
        "help": (train + ["--help", trap], tmp),
        "hydra_help": (train + ["--hydra-help", trap], tmp),
    }
    # Controls: Hydra alone runs each trap it instantiates itself (one process each: a trap
    # that runs also ends Hydra's start-up, before the next one would run).
    commands |= {f"control_{trap}": ([sys.executable, "app.py", "-m", *_overrides(control_written, {trap}),
                                      f"hydra.sweep.dir={tmp}/control_sweep"], tmp / "control")
                 for trap in LIVE}
    procs = {}
    for name, (command, path) in commands.items():
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"PYTHONPATH": str(path)}
        procs[name] = subprocess.Popen(command, cwd=path, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
    results = {name: (proc.wait(timeout=300), *proc.communicate()) for name, proc in procs.items()}
    return tmp, written, control_written, results


def test_the_traps_are_live(runs):
    """Without hydralearn's check, Hydra itself runs each trap it instantiates."""
    _, _, control_written, _ = runs
    assert {p.name for p in control_written.iterdir()} == LIVE


@pytest.mark.parametrize("name, expected", [
    ("override_run", [line for _, _, line in OVERRIDE_TRAPS]),
    ("override_multirun", [line for _, _, line in OVERRIDE_TRAPS]),
    ("file_run", FILE_EXPECTED),
    ("file_multirun", FILE_EXPECTED),
    ("help", ["hydra.hydra_logging.handlers.trap: class 'io.FileIO' is not allowed"]),
    ("hydra_help", ["hydra.hydra_logging.handlers.trap: class 'io.FileIO' is not allowed"]),
])
def test_no_trap_runs(runs, name, expected):
    tmp, written, _, results = runs
    code, _, stderr = results[name]
    assert code == 2, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert lines and all(line.startswith("hydralearn: error: ") for line in lines), stderr[-3000:]
    for fragment in expected:
        assert any(fragment in line for line in lines), (fragment, stderr)
    assert not list(written.iterdir())
    assert not any((tmp / d).exists() for d in ("run", "sweep", "file_run", "file_sweep"))


@pytest.mark.parametrize("name", ["LD_PRELOAD", "LD_LIBRARY_PATH", "DYLD_INSERT_LIBRARIES",
                                  "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PYTHONUSERBASE",
                                  "PYTHONWARNINGS", "PYTHONBREAKPOINT", "PATH", "GCONV_PATH",
                                  "BASH_ENV", "PJRT_NAMES_AND_LIBRARY_PATHS", "MPLBACKEND"])
def test_env_that_loads_code_is_refused(name):
    assert allowlist.env_errors({name: "x"}) == [
        f"hydra.job.env_set.{name} is not allowed: it makes processes load code; set it in the "
        "environment that starts hydralearn instead"]


@pytest.mark.parametrize("name", ["OMP_NUM_THREADS", "NCCL_DEBUG", "XLA_PYTHON_CLIENT_MEM_FRACTION",
                                  "CUDA_VISIBLE_DEVICES", "PYTHONUNBUFFERED", "PYTHONHASHSEED"])
def test_env_that_tunes_is_allowed(name):
    assert allowlist.env_errors({name: "1"}) == []


@pytest.mark.parametrize("section, key, value, allowed", [
    ("handlers", "class", "logging.StreamHandler", True),
    ("handlers", "class", "logging.FileHandler", True),
    ("handlers", "class", "logging.handlers.RotatingFileHandler", True),
    ("formatters", "()", "logging.Formatter", True),
    ("filters", "()", "logging.Filter", True),
    # Python 3.12 calls a QueueHandler's `queue` and `listener` strings as callables.
    ("handlers", "class", "logging.handlers.QueueHandler", False),
    ("handlers", "class", "logging.config.fileConfig", False),  # eval()s its file's contents
    ("handlers", "()", "logging.config.listen", False),  # a socket that accepts configs
    ("formatters", "()", "logging.makeLogRecord", False),
    ("handlers", "class", "io.FileIO", False),
])
def test_logging_may_use_only_standard_logging_classes(section, key, value, allowed):
    hydra = OmegaConf.create({"job_logging": {section: {"x": {key: value}}}})
    assert (allowlist.hydra_errors(hydra) == []) is allowed


def test_nested_targets_that_an_installed_hydra_plugin_names_are_allowed():
    """What a plugin stores under hydra/ (as the Optuna sweeper stores its samplers) may be
    instantiated inside its sweeper; anything else nested there is refused."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="hydra/sweeper/sampler", name="test_sampler",
                                 node={"_target_": "test_plugin.samplers.Sampler", "seed": 0})
    basic = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
    for sampler, allowed in (("test_plugin.samplers.Sampler", True), ("builtins.open", False)):
        hydra = OmegaConf.create({"sweeper": {"_target_": basic, "sampler": {"_target_": sampler}}})
        assert (allowlist.hydra_errors(hydra) == []) is allowed

