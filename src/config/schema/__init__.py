"""The typed config tree: the root schema and one schema per config group.

These modules import no jax, so composing, printing and validating a config stays fast.
Each schema is registered in Hydra's ConfigStore (config/store.py) as `<group>/base_<name>`;
the YAML options under conf/ extend it and state only what differs, so every default lives
here, once, and `--cfg job` shows it.
"""

import dataclasses
from typing import Any

from omegaconf import MISSING

from hydralearn.config.schema.distributed import DistributedConfig
from hydralearn.config.schema.hardware import AUTO, HardwareConfig, Platform
from hydralearn.config.schema.init import HfConfigMode, InitConfig
from hydralearn.config.schema.kernel import Kernel, KernelConfig
from hydralearn.config.schema.mesh import MESH_AXES, MeshConfig, MeshMode, ShardingConfig
from hydralearn.config.schema.logger import LoggerConfig
from hydralearn.config.schema.objective import Objective, ObjectiveConfig
from hydralearn.config.schema.optim import ROLES, OptimizerConfig
from hydralearn.config.schema.remat import NameAction, RematConfig, RematPolicy
from hydralearn.config.schema.run import (BestMode, CheckpointConfig, NonFinite, ProfileConfig,
                                           SaveMode, TrainerConfig)
from hydralearn.config.schema.schedule import ScheduleConfig
from hydralearn.data.config import DATA_SCHEMAS, DataConfig, Source
from hydralearn.data.tokenizer_config import TOKENIZER_SCHEMAS

__all__ = ["AUTO", "MESH_AXES", "ROLES", "BestMode", "CheckpointConfig",
           "DataConfig", "DistributedConfig", "HardwareConfig", "HfConfigMode", "InitConfig", "Kernel",
           "KernelConfig", "LoggerConfig", "MeshConfig", "MeshMode", "NameAction", "NonFinite",
           "Objective", "ObjectiveConfig",
           "OptimizerConfig", "Platform", "ProfileConfig", "RematConfig", "RematPolicy", "SaveMode",
           "ScheduleConfig", "ShardingConfig", "Source", "TrainConfig", "TrainerConfig", "GROUPS",
           "OPTION_SCHEMAS"]


@dataclasses.dataclass(kw_only=True)
class TrainConfig:
    name: str = MISSING  # the run's name: runs/<name> (conf/train.yaml sets it to the model preset)
    seed: int = 0
    # Modules imported before the config's `_target_`s are checked: the user's opt-in to run
    # their own layer code (docs/plugins.md). Installed plugins need no entry here.
    plugins: list[str] = dataclasses.field(default_factory=list)
    model: Any = MISSING  # a registered model config, chosen by the `model` group
    hardware: HardwareConfig = MISSING
    mesh: MeshConfig = MISSING
    sharding: ShardingConfig = MISSING
    remat: RematConfig = MISSING
    kernel: KernelConfig = MISSING
    optim: Any = MISSING  # a registered optimizer config (config/schema/optim.py), by `_target_`
    schedule: Any = MISSING  # a registered schedule config (config/schema/schedule.py)
    data: DataConfig = MISSING
    objective: ObjectiveConfig = dataclasses.field(default_factory=ObjectiveConfig)
    trainer: TrainerConfig = MISSING
    checkpoint: CheckpointConfig = MISSING
    logger: LoggerConfig = MISSING
    distributed: DistributedConfig = MISSING
    init: InitConfig = MISSING


# Group -> (base schema name, schema): stored as `<group>/base_<name>` in Hydra's ConfigStore.
# The optim and schedule options are chosen by `_target_` and stored from the registry
# (`@register(group="optim", name="adamw")` -> optim/base_adamw), like the model's layers.
GROUPS: dict[str, tuple[str, type]] = {
    "hardware": ("hardware", HardwareConfig), "mesh": ("mesh", MeshConfig),
    "sharding": ("sharding", ShardingConfig), "remat": ("remat", RematConfig),
    "kernel": ("kernel", KernelConfig), "trainer": ("trainer", TrainerConfig),
    "checkpoint": ("checkpoint", CheckpointConfig), "logger": ("logger", LoggerConfig),
    "distributed": ("distributed", DistributedConfig), "init": ("init", InitConfig),
    "objective": ("objective", ObjectiveConfig),
}

# Groups with one schema per option (group -> option name -> schema), each stored as
# `<group>/base_<option>`: `data=jsonl` extends data/base_jsonl.
OPTION_SCHEMAS: dict[str, dict[str, type]] = {"data": DATA_SCHEMAS, "data/tokenizer": TOKENIZER_SCHEMAS}
