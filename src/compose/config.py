"""Hydra composition with user-facing errors, and resolution of every `auto` choice.

`compose` is Hydra's compose API with the command line's config location (`-cp`, `-cn`,
`--config-dir`); the training CLI runs exactly what it returns, and every review tool sees
the same config. `resolve` turns the stated hardware and the devices present into concrete
choices that are saved with the run.
"""

import contextlib
import dataclasses
from pathlib import Path
from typing import Iterator

import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hydralearn import CONF_DIR
from hydralearn.compose import overrides as override_check
from hydralearn.compose.files import yaml_problem
from hydralearn.compose.schema import TrainConfig
from hydralearn.compose.store import register_schemas
from hydralearn.compose.validate import describe, validate
from hydralearn.errors import ConfigError

JOB_NAME = "train"


@dataclasses.dataclass(frozen=True)
class Location:
    """Where the primary config and extra config files are found (Hydra's command-line flags)."""

    config_path: str | None = None  # -cp: the primary config's directory (default: conf/)
    config_name: str = "train"  # -cn
    config_dir: str | None = None  # --config-dir: searched after the primary's directory

    def primary_dir(self) -> Path:
        if self.config_path is None:
            return CONF_DIR
        # As Hydra: relative to the file that declares the app (hydralearn/cli/train.py).
        return (Path(__file__).resolve().parent.parent / "cli" / self.config_path).resolve()


DEFAULT = Location()


def compose(overrides: list[str] = (), location: Location = DEFAULT) -> DictConfig:
    """The composed config, `hydra` node included; ConfigError (every problem) if it fails."""
    with hydra_session(overrides, location) as full:
        return compose_in_session(full, location)


def compose_in_session(full: list[str], location: Location = DEFAULT) -> DictConfig:
    """`compose` inside a `hydra_session` (which gave `full`), e.g. to run the job in it."""
    try:
        cfg = hydra_compose(location.config_name, overrides=full, return_hydra_config=True)
    except (ConfigCompositionException, MissingConfigException, OverrideParseException) as e:
        raise ConfigError(_diagnose(e, full, location)) from None
    except yaml.YAMLError as e:  # a config file of a group or experiment that is not YAML
        raise ConfigError([yaml_problem(e)]) from None
    # As in a real run, `${hydra:...}` interpolations resolve against this composition.
    HydraConfig.instance().set_config(cfg)
    return cfg


@contextlib.contextmanager
def hydra_session(overrides: list[str], location: Location = DEFAULT) -> Iterator[list[str]]:
    """Hydra initialised for `location`; yields the overrides Hydra must compose with."""
    register_schemas()
    primary = location.primary_dir()
    if not primary.is_dir():
        raise ConfigError([f"--config-path {primary}: no such directory"])
    with initialize_config_dir(config_dir=str(primary), job_name=JOB_NAME, version_base="1.3"):
        yield list(overrides) + _search_path(location, list(overrides))


def load(overrides: list[str] = (), location: Location = DEFAULT) -> TrainConfig:
    """Compose and validate; every problem is raised together as one ConfigError."""
    return validate(compose(overrides, location))


def _search_path(location: Location, overrides: list[str]) -> list[str]:
    """--config-dir as Hydra places it: after the primary directory and plugin paths, before
    `hydra.searchpath` entries (the override's, else the primary config's)."""
    if location.config_dir is None:
        return []
    extra = Path(location.config_dir).resolve()
    if not extra.is_dir():
        raise ConfigError([f"--config-dir {location.config_dir}: no such directory"])
    given = [o for o in override_check.parse(overrides) if o.key_or_group == "hydra.searchpath"]
    if given:
        entries = list(given[-1].value())
    else:
        entries = _primary_search_path(location, extra)
    return [f"hydra.searchpath=[{','.join(repr(str(e)) for e in [f'file://{extra}', *entries])}]"]


def _primary_search_path(location: Location, extra: Path) -> list[str]:
    for directory in (location.primary_dir(), extra):
        path = directory / f"{location.config_name}.yaml"
        if path.is_file():
            found = OmegaConf.select(OmegaConf.load(path), "hydra.searchpath")
            return list(found) if found is not None else []
    return []


def _diagnose(e: Exception, overrides: list[str], location: Location) -> list[str]:
    """Every problem of a failed composition."""
    if isinstance(e, OverrideParseException):
        return [f"cannot parse override: {str(e).strip().splitlines()[0]}"]
    if isinstance(e, MissingConfigException):
        return [override_check.missing_option(e)]
    if (isinstance(override_check.composition_cause(e), OmegaConfBaseException)
            and not override_check.key_overrides(overrides)):
        return [override_check.describe_failure(e)]  # a config file's error, not an override's
    return override_check.diagnose(overrides, location.config_name) or [override_check.describe_failure(e)]

def to_container(config) -> dict:
    """A (resolved) config as plain dicts, enums by name: what resolved_config.yaml holds."""
    return OmegaConf.to_container(OmegaConf.structured(config), enum_to_str=True)


def from_container(container: dict) -> TrainConfig:
    """A saved config (resolved_config.yaml, a golden file) validated back into a TrainConfig."""
    register_schemas()
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(TrainConfig), container)
    except OmegaConfBaseException as e:
        raise ConfigError([describe(e)]) from None
    return validate(cfg)
