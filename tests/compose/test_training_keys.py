"""The keys of issue 15 (optimizer, schedule, accumulation, profiling, loggers) are shown by
`--cfg job`, refused with one line when wrong, and classified by the one resume rule that
hydralearn-train and hydralearn-diff share."""

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from hydralearn.config import compose as compose_config
from hydralearn.config.compose import to_container
from hydralearn.compose.hardware import Host
from hydralearn.compose.resolve import resolve
from hydralearn.config.resume_rule import compare
from hydralearn.errors import ConfigError
from hydralearn.review.diff import resume_check
from tests.conftest import TINY, tiny_config


def test_cfg_job_shows_every_new_key():
    proc = subprocess.run([sys.executable, "-m", "hydralearn.cli.train", "--cfg", "job", "optim=muon",
                           "schedule=wsd", "logger=wandb", "trainer.grad_accum=2",
                           "trainer.profile.steps=[3,4]"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    cfg = OmegaConf.create(proc.stdout)
    assert cfg.optim._target_ == "hydralearn.compose.optimizers.muon" and cfg.optim.adam_lr == 3e-3
    assert dict(cfg.optim.weight_decay_by_role) == {"matrix": 0.1, "head": 0.1, "embed": 0.0,
                                                    "norm": 0.0, "bias": 0.0}
    assert cfg.schedule.decay_fraction == 0.2 and cfg.schedule.warmup_steps == 20
    assert cfg.trainer.grad_accum == 2 and list(cfg.trainer.profile.steps) == [3, 4]
    assert dict(cfg.logger.sinks) == {"jsonl": True, "tensorboard": True, "wandb": True, "mlflow": False}
    assert cfg.logger.wandb.mode == "offline"


@pytest.mark.parametrize("overrides, message", [
    (["optim=lion", "optim.b2=1.5"], "optim.b2=1.5 must be in [0, 1)"),
    (["optim=sgd", "optim.momentum=-0.1"], "optim.momentum=-0.1 must be in [0, 1)"),
    (["optim.clip_norm=-1"], "optim.clip_norm=-1.0 must be >= 0 (0: no clipping)"),
    (["optim.weight_decay_by_role.norm=-0.1"], "optim.weight_decay_by_role.norm=-0.1 must be >= 0"),
    (["+optim.weight_decay_by_role.embeding=0.1"],
     "optim.weight_decay_by_role.embeding: no such parameter role; did you mean 'optim.weight_decay_by_role.embed'?"),
    (["optim=muon", "optim.ns_steps=0"], "optim.ns_steps=0 must be at least 1"),
    (["schedule=wsd", "schedule.decay_fraction=0"], "schedule.decay_fraction=0.0 must be in (0, 1]"),
    (["schedule.warmup_steps=-5"], "schedule.warmup_steps=-5 must be >= 0"),
    (["schedule=constant", "+schedule.min_lr_ratio=0.5"], "unknown key schedule.min_lr_ratio"),
    (["trainer.grad_accum=0"], "trainer.grad_accum=0 must be positive"),
    (["trainer.profile.steps=[4,2]"], "trainer.profile.steps=[4, 2] must be [first, last] with 1 <= first <= last"),
    (["trainer.profile.steps=[1,2,3]"], "trainer.profile.steps=[1, 2, 3] must be [first, last]"),
    (["+logger.sinks.mlfow=true"], "logger.sinks.mlfow: no such sink; did you mean 'logger.sinks.mlflow'?"),
    (["logger.wandb.mode=cloud"], "logger.wandb.mode='cloud' is not valid; choose one of: offline, online"),
    (["optim=adam"], "optim=adam: no such option; did you mean 'adamw'?"),
])
def test_bad_values_get_one_line(overrides, message):
    with pytest.raises(ConfigError) as error:
        compose_config.load([*TINY, *overrides])
    assert any(line.startswith(message) for line in error.value.errors), error.value.errors


def _changes(a: list[str], b: list[str]):
    return compare(saved=to_container(tiny_config(*a)), current=to_container(tiny_config(*b)))


def test_resume_rule_allows_accumulation_profiling_and_loggers():
    changes = _changes([], ["trainer.grad_accum=2", "trainer.profile.steps=[2,3]", "logger=mlflow"])
    assert not changes.refused
    assert {line.split(":")[0] for line in changes.allowed} == {
        "trainer.grad_accum", "trainer.profile.steps", "logger.sinks.mlflow"}
    verdict = resume_check(tiny_config(), tiny_config("trainer.grad_accum=4"))
    assert verdict.possible, verdict.reason  # hydralearn-diff: the same rule


@pytest.mark.parametrize("change, refused_key", [
    (["optim=lion"], "optim._target_"),
    (["optim.weight_decay_by_role.embed=0.1"], "optim.weight_decay_by_role.embed"),
    (["schedule=wsd"], "schedule._target_"),
    (["schedule.warmup_steps=5"], "schedule.warmup_steps"),
])
def test_resume_rule_refuses_optimizer_and_schedule_changes(change, refused_key):
    assert refused_key in {line.split(":")[0] for line in _changes([], change).refused}
    assert not resume_check(tiny_config(), tiny_config(*change)).possible


def test_a_sink_without_its_package_is_refused_where_the_run_starts(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if wandb were not installed
    config = compose_config.load([*TINY, "logger=wandb"])
    with pytest.raises(ConfigError) as error:
        resolve(config, host=Host.current())
    assert error.value.errors == ["logger.sinks.wandb=true needs the wandb package: pip install "
                                  "'hydralearn[wandb]' (or set logger.sinks.wandb=false)"]
    resolve(config, device_count=1)  # a plan of it needs no wandb
