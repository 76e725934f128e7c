"""Hydra composition with user-facing errors, and resolution of every `auto` choice.

`compose` is the programmatic twin of the CLI (tests, planner, pre-flight); `resolve` turns
the stated hardware and the devices present into concrete choices that are saved with the run.
"""

import dataclasses

import jax
import jax.numpy as jnp
import yaml

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from hydralearn import CONF_DIR
from hydralearn.compose import schema
from hydralearn.compose.files import yaml_problem
from hydralearn.compose.hardware import Host, resolve_hardware
from hydralearn.compose.kernels import AttentionShape, kernel_errors, resolve_kernel
from hydralearn.compose.mesh import MeshConfig, MeshFacts, MeshMode, auto_axes, resolve_axes
from hydralearn.compose.remat import remat_errors, resolve_remat
from hydralearn.compose.sharding import (batch_errors, indivisible, missing_rules, param_specs,
                                         unused_axes)
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
            if key in known and overrides[index].startswith("~"):
                raise ConfigError([f"cannot delete {key}: Hydra 1.3 cannot delete a key whose value "
                                   f"is null; set it instead ({key}=...)"]) from None
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
    except yaml.YAMLError as e:  # a config file of a group or experiment that is not YAML
        raise ConfigError([yaml_problem(e)]) from None
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


def resolve(config: schema.TrainConfig, *, device_count: int | None = None,
            host: Host | None = None) -> schema.TrainConfig:
    """Every auto made concrete; ConfigError (all problems at once) if the run is impossible.

    `host` is what the run really has (the CLI passes Host.current()); without it the
    hardware profile is assumed present with `device_count` devices (planning, tests).
    """
    host = host or Host.assumed(config.hardware, device_count=device_count)
    hardware, errors = resolve_hardware(config.hardware, host)
    model = config.model
    shape = AttentionShape(compute_dtype=model.compute_dtype, head_dim=model.resolved_head_dim,
                           seq_len=config.data.seq_len)
    kernel = resolve_kernel(config.kernel, preferred=hardware.preferred_kernel, host=host, shape=shape)
    remat = resolve_remat(config.remat, preferred=hardware.preferred_remat)
    errors += kernel_errors(kernel, host=host, shape=shape)
    errors += remat_errors(remat, memory_kinds=host.memory_kinds, host=host.describe())
    config = dataclasses.replace(config, hardware=hardware, kernel=kernel, remat=remat)
    from hydralearn.compose.build import abstract_params  # flax; only once validation passed

    _, params = abstract_params(config)
    try:
        axes = _mesh_axes(config, host=host, params=params)
    except ValueError as e:
        raise ConfigError(errors + [str(e)]) from None
    errors += sharding_errors(config, axes=axes, params=params)
    if errors:
        raise ConfigError(errors)
    return dataclasses.replace(config, mesh=MeshConfig(mode=MeshMode.FIXED, axes=axes))


def _mesh_axes(config: schema.TrainConfig, *, host: Host, params) -> dict[str, int]:
    if config.mesh.mode is MeshMode.FIXED:
        return resolve_axes(config.mesh.axes, host.device_count)
    num_params = sum(v.size for v in jax.tree.leaves(params))
    param_bytes = jnp.dtype(config.model.param_dtype).itemsize
    facts = MeshFacts(
        device_count=host.device_count, devices_per_host=config.hardware.devices_per_host,
        # parameters, gradients and Adam's two moments, all in the parameter dtype
        train_bytes=4.0 * num_params * param_bytes,
        device_memory_bytes=config.hardware.device_memory_bytes,
        used_axes=frozenset(config.sharding.used_mesh_axes()))
    return auto_axes(config.mesh.axes, facts)


def sharding_errors(config: schema.TrainConfig, *, axes: dict[str, int], params) -> list[str]:
    """Rules that miss a logical axis, leave a mesh axis idle, or split a dimension unevenly."""
    rules = config.sharding
    errors = missing_rules(params, rules) + unused_axes(rules, axes)
    errors += batch_errors(batch_size=config.data.batch_size, seq_len=config.data.seq_len,
                           rules=rules, axes=axes)
    if not errors:
        errors += indivisible(params, param_specs(params, rules), axes)
    return errors


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
