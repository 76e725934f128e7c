"""The typed root of the config tree: one field per config group plus run-level keys."""

import dataclasses
from typing import Any

from hydralearn.compose.hardware import HardwareConfig
from hydralearn.compose.kernels import KernelConfig
from hydralearn.compose.mesh import MeshConfig, ShardingConfig
from hydralearn.compose.optim import OptimConfig
from hydralearn.compose.remat import RematConfig
from hydralearn.compose.validate import ConfigError, build
from hydralearn.data.pipeline import DataConfig
from hydralearn.runtime.config import CheckpointConfig, TrainerConfig


@dataclasses.dataclass(kw_only=True, frozen=True)
class TrainConfig:
    name: str = "default"
    seed: int = 0
    model: Any  # a registered model's Config, chosen by its `_target_`
    hardware: HardwareConfig
    mesh: MeshConfig
    sharding: ShardingConfig
    remat: RematConfig
    kernel: KernelConfig
    optim: OptimConfig
    data: DataConfig
    trainer: TrainerConfig
    checkpoint: CheckpointConfig = CheckpointConfig()


def load(container: dict) -> TrainConfig:
    """Validate a composed config (plain containers) into a TrainConfig; raises ConfigError."""
    if "_target_" not in container.get("model", {}):
        raise ConfigError(["model: needs a _target_ naming a registered model class"])
    config = build(TrainConfig, container)
    errors = []
    for group in dataclasses.fields(config):
        check = getattr(getattr(config, group.name), "errors", None)
        if callable(check):
            errors += check()
    if config.data.vocab_size > config.model.vocab_size:
        errors.append(f"model.vocab_size={config.model.vocab_size} is smaller than the data's "
                      f"tokenizer vocabulary ({config.data.vocab_size})")
    if config.checkpoint.keep_best and not (
            config.trainer.eval_every and config.checkpoint.every_steps % config.trainer.eval_every == 0
            and config.checkpoint.every_steps):
        errors.append(f"checkpoint.keep_best={config.checkpoint.keep_best} ranks checkpoints by "
                      "the eval at their step: checkpoint.every_steps must be a positive multiple "
                      f"of trainer.eval_every (got {config.checkpoint.every_steps} and "
                      f"{config.trainer.eval_every})")
    if errors:
        raise ConfigError(errors)
    return config
