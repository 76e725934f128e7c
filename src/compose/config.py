"""Hydra composition with user-facing errors, and resolution of every `auto` choice.

`compose` is the programmatic twin of the CLI (tests, planner, pre-flight); `resolve` turns
the stated hardware and the devices present into concrete choices that are saved with the run.
"""

import dataclasses

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from hydralearn import CONF_DIR
from hydralearn.compose import schema
from hydralearn.compose.kernels import resolve_kernel
from hydralearn.compose.mesh import resolve_axes
from hydralearn.compose.validate import ConfigError, closest, to_container


def compose(overrides: list[str] = ()) -> DictConfig:
    """Compose conf/train.yaml with Hydra overrides; Hydra's errors become ConfigError."""
    return compose_normalized(overrides)[0]


def compose_normalized(overrides: list[str] = ()) -> tuple[DictConfig, list[str]]:
    """The composed config and the overrides as Hydra must receive them.

    A key that a schema defines but no YAML file sets (e.g. model.tie_embeddings) is
    overridable with a plain `key=value`, as users expect: it is passed on as `++key=value`.
    """
    overrides = list(overrides)
    for _ in range(len(overrides) + 1):
        try:
            return _hydra_compose(overrides), overrides
        except ConfigCompositionException as e:
            key, index = _failed_override(e, overrides)
            if index is None:
                raise ConfigError([_composition_message(e)]) from None
            rest = overrides[:index] + overrides[index + 1:]
            known = _schema_keys(rest)
            if key not in known or overrides[index].startswith(("+", "~")):
                raise ConfigError([f"unknown key {key}{closest(key, known)}"]) from None
            overrides[index] = "++" + overrides[index]
    raise AssertionError("unreachable: each retry fixes one override")


def load(overrides: list[str] = ()) -> schema.TrainConfig:
    """Compose and validate; every problem is raised together as one ConfigError."""
    return load_composed(compose(overrides))


def load_composed(cfg: DictConfig) -> schema.TrainConfig:
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:
        raise ConfigError([f"cannot resolve an interpolation: {_first_line(e)}"]) from None
    return schema.load(container)


def _hydra_compose(overrides: list[str]) -> DictConfig:
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose("train", overrides=overrides, return_hydra_config=True)
    except MissingConfigException as e:
        raise ConfigError([_missing_option_message(e)]) from None
    except OverrideParseException as e:
        raise ConfigError([f"cannot parse override: {_first_line(e)}"]) from None
    # As in a real run, `${hydra:...}` interpolations resolve against this composition.
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def _failed_override(e: ConfigCompositionException, overrides: list[str]) -> tuple[str, int | None]:
    text = str(e)
    if not (text.startswith("Could not override '") or text.startswith("Could not delete")):
        return "", None
    key = text.split("'")[1] if "'" in text else ""
    for index, override in enumerate(overrides):
        if override.lstrip("+~").split("=", 1)[0] == key:
            return key, index
    return key, None


def _schema_keys(overrides: list[str]) -> list[str]:
    """Every dotted key of the validated config (schema defaults included), else of the YAML."""
    cfg = _hydra_compose(overrides)
    try:
        tree = to_container(load_composed(cfg))
    except ConfigError:
        tree = OmegaConf.to_container(cfg)
    return list(_dotted_keys(tree))


def _dotted_keys(tree, prefix: str = ""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, dict):
            yield from _dotted_keys(value, path + ".")


def resolve(config: schema.TrainConfig, *, device_count: int) -> schema.TrainConfig:
    """Every auto made concrete for `device_count` devices; ConfigError if impossible."""
    try:
        axes = resolve_axes(config.mesh.axes, device_count)
    except ValueError as e:
        raise ConfigError([str(e)]) from None
    return dataclasses.replace(
        config,
        mesh=dataclasses.replace(config.mesh, axes=axes),
        kernel=resolve_kernel(config.kernel, platform=config.hardware.platform))


def _missing_option_message(e: MissingConfigException) -> str:
    group, _, option = (e.missing_cfg_file or "").rpartition("/")
    options = sorted(e.options or [])
    if group and options:
        return (f"{group}={option}: no such option{closest(option, options)} "
                f"(valid options: {', '.join(options)})")
    return _first_line(e)


def _composition_message(e: ConfigCompositionException) -> str:
    text = str(e)
    if "Could not append to config" in text:
        key = text.split("'")[1] if "'" in text else ""
        return f"cannot add {key}: it already exists; set it with {key}=... (no '+')"
    return _first_line(e)


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
