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
from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hydralearn import CONF_DIR
from hydralearn.config import overrides as override_check
from hydralearn.config.files import yaml_problem
from hydralearn.config.schema import TrainConfig
from hydralearn.config.store import register_schemas
from hydralearn.config.validate import describe, validate
from hydralearn.data.config import schema_for
from hydralearn.errors import ConfigError

JOB_NAME = "train"


@dataclasses.dataclass(frozen=True)
class Location:
    """Where the primary config and extra config files are found (Hydra's command-line flags)."""

    config_path: str | None = None  # -cp: the primary config's directory (default: conf/)
    config_name: str = "train"  # -cn
    config_dir: str | None = None  # --config-dir: searched after the primary's directory (ConfigLocations)

    def primary_dir(self) -> Path:
        if self.config_path is None:
            return CONF_DIR
        # As Hydra: relative to the file that declares the app (hydralearn/cli/train.py).
        return (Path(__file__).resolve().parent.parent / "cli" / self.config_path).resolve()


DEFAULT = Location()


def compose(overrides: list[str] = (), location: Location = DEFAULT) -> DictConfig:
    """The composed config, `hydra` node included; ConfigError (every problem) if it fails."""
    with hydra_session(location):
        return compose_in_session(overrides, location)


def compose_in_session(overrides: list[str], location: Location = DEFAULT) -> DictConfig:
    """`compose` inside a `hydra_session`, e.g. to run the job in it."""
    try:
        cfg = hydra_compose(location.config_name, overrides=list(overrides), return_hydra_config=True)
    except (ConfigCompositionException, MissingConfigException, OverrideParseException) as e:
        raise ConfigError(_diagnose(e, list(overrides), location)) from None
    except yaml.YAMLError as e:  # a config file of a group or experiment that is not YAML
        raise ConfigError([yaml_problem(e)]) from None
    except (AttributeError, AssertionError, TypeError) as e:  # raised by OmegaConf's merge itself
        raise ConfigError([override_check.library_failure(e, list(overrides))]) from e
    # As in a real run, `${hydra:...}` interpolations resolve against this composition.
    HydraConfig.instance().set_config(cfg)
    return cfg


class ConfigLocations(SearchPathPlugin):
    """hydralearn's places in Hydra's config search path, as Hydra's own command line puts them:
    conf/ stays searchable when `-cp` names another primary directory (a user's primary config
    can extend `train`), and `--config-dir` comes after the primary directory and the plugins'
    paths, before `hydra.searchpath` (so a primary config may live there too). Registered with
    Hydra (`register_locations`); `config_dir` is set only while hydralearn composes, because
    `hydra.main` adds the flag's directory itself."""

    config_dir: Path | None = None

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        # hydra.main names a directory without the scheme, the compose API with it.
        present = {element.path.removeprefix("file://") for element in search_path.get_path()}
        if str(CONF_DIR) not in present:
            search_path.append(provider="hydralearn", path=f"file://{CONF_DIR}")
        if ConfigLocations.config_dir is not None:
            search_path.append(provider="command-line", path=f"file://{ConfigLocations.config_dir}")


def register_locations() -> None:
    """Idempotent; before Hydra builds a search path (compose, or `hydra.main`)."""
    Plugins.instance().register(ConfigLocations)


@contextlib.contextmanager
def hydra_session(location: Location = DEFAULT) -> Iterator[None]:
    """Hydra initialised for `location` (its search path as the command line's flags make it)."""
    register_schemas()
    register_locations()
    primary = location.primary_dir()
    if not primary.is_dir():
        raise ConfigError([f"--config-path {primary}: no such directory"])
    extra = None if location.config_dir is None else Path(location.config_dir).absolute()
    if extra is not None and not extra.is_dir():
        raise ConfigError([f"--config-dir {location.config_dir}: no such directory"])
    ConfigLocations.config_dir = extra
    try:
        with initialize_config_dir(config_dir=str(primary), job_name=JOB_NAME, version_base="1.3"):
            yield
    finally:
        ConfigLocations.config_dir = None


def load(overrides: list[str] = (), location: Location = DEFAULT) -> TrainConfig:
    """Compose and validate; every problem is raised together as one ConfigError."""
    return validate(compose(overrides, location))


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
        cfg = OmegaConf.merge(OmegaConf.structured(TrainConfig), _typed_data(container))
    except OmegaConfBaseException as e:
        raise ConfigError([describe(e)]) from None
    return validate(cfg)


def _typed_data(container: dict) -> dict:
    """The `data` node typed by its `source` and tokenizer `kind` (the schemas differ per option)."""
    data = container.get("data")
    if not isinstance(data, dict):
        return container
    data_schema, tokenizer_schema = schema_for(data)
    node = OmegaConf.structured(data_schema)
    node.tokenizer = OmegaConf.structured(tokenizer_schema)
    try:
        return {**container, "data": OmegaConf.merge(node, data)}
    except OmegaConfBaseException as e:  # keys relative to the data node: name them from the root
        raise ConfigError([describe(e, prefix="data")]) from None
