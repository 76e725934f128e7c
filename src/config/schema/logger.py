"""Schema of conf/logger: where metrics go. Only process 0 of a job writes any of them.

`logger.sinks` is a dict of sink name -> enabled, so one sink is switched with one override
(`logger.sinks.wandb=true`, `logger.sinks.tensorboard=false`; `logger=wandb` and
`logger=mlflow` are options that do the same). Every sink gets the same records as
metrics.jsonl (runtime/sinks.py):

    jsonl        <run dir>/metrics.jsonl
    tensorboard  <run dir>/tensorboard/ (tensorboardX event files; the viewer: hydralearn[tensorboard])
    wandb        Weights & Biases, offline by default: <run dir>/wandb/ (`wandb sync` uploads it);
                 needs `pip install 'hydralearn[wandb]'`
    mlflow       MLflow tracking, by default a local store <run dir>/mlflow.db (SQLite);
                 needs `pip install 'hydralearn[mlflow]'`
"""

import dataclasses
import enum
import importlib.util
from typing import Optional

from hydralearn.errors import closest

# Sink -> the Python package it needs beyond hydralearn's own dependencies, and its extra.
EXTRA_PACKAGES = {"wandb": "wandb", "mlflow": "mlflow"}
SINKS = ("jsonl", "tensorboard", *EXTRA_PACKAGES)


def _default_sinks() -> dict[str, bool]:
    return {"jsonl": True, "tensorboard": True, "wandb": False, "mlflow": False}


class WandbMode(enum.Enum):
    offline = "offline"  # written under <run dir>/wandb, no network; upload with `wandb sync`
    online = "online"  # streamed to the W&B server (needs `wandb login`)


@dataclasses.dataclass(kw_only=True)
class WandbConfig:
    project: str = "hydralearn"
    entity: Optional[str] = None  # the W&B team or user; None: the logged-in user's default
    mode: WandbMode = WandbMode.offline


@dataclasses.dataclass(kw_only=True)
class MlflowConfig:
    tracking_uri: Optional[str] = None  # None: sqlite:///<run dir>/mlflow.db; or a server's URL
    experiment: str = "hydralearn"


@dataclasses.dataclass(kw_only=True)
class LoggerConfig:
    sinks: dict[str, bool] = dataclasses.field(default_factory=_default_sinks)
    wandb: WandbConfig = dataclasses.field(default_factory=WandbConfig)
    mlflow: MlflowConfig = dataclasses.field(default_factory=MlflowConfig)

    def enabled(self) -> list[str]:
        return [name for name in SINKS if self.sinks.get(name)]

    def errors(self) -> list[str]:
        keys = [f"logger.sinks.{s}" for s in SINKS]
        return [f"logger.sinks.{name}: no such sink{closest(f'logger.sinks.{name}', keys)} "
                f"(sinks: {', '.join(SINKS)})" for name in self.sinks if name not in SINKS]


def missing_packages(config: LoggerConfig) -> list[str]:
    """One line per enabled sink whose package this Python environment lacks."""
    return [f"logger.sinks.{sink}=true needs the {package} package: pip install 'hydralearn[{sink}]' "
            f"(or set logger.sinks.{sink}=false)"
            for sink, package in EXTRA_PACKAGES.items()
            if config.sinks.get(sink) and importlib.util.find_spec(package) is None]
