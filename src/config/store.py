"""Registers every schema in Hydra's ConfigStore, so YAML options can extend them.

`base_train` is the root (conf/train.yaml starts from it); each group schema is stored as
`<group>/base_<name>` (config/schema) and each registered layer config likewise
(`model/ffn/base_moe`, from layers/*_config.py). Layer configs come from the modules that
installed packages declare under the entry point group `hydralearn.plugins` (hydralearn's own
layers are one: hydralearn.layers.configs) and, once a config is composed, the modules its
`plugins:` list names (docs/plugins.md). Importing a plugin runs its code: only what the user installed or
listed is imported, and only what it registers is allowlisted.
"""

import importlib
import importlib.metadata

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from hydralearn.config import schema
from hydralearn.errors import ConfigError
from hydralearn.layers import registry

PLUGIN_GROUP = "hydralearn.plugins"
SCHEMA_PREFIX = "base_"  # a group's schemas are stored as its options `base_<name>`
_stored: set[type] = set()


def is_schema(option: str) -> bool:
    """A group option that is a stored schema for YAML options to extend, not one to pick."""
    return option.startswith(SCHEMA_PREFIX)


def register_schemas() -> None:
    """Idempotent: stores what is not stored yet (plugins may register more later)."""
    store = ConfigStore.instance()
    if not _stored:
        load_entry_point_plugins()
        store.store(name="base_train", node=schema.TrainConfig)
        for group, (name, node) in schema.GROUPS.items():
            store.store(group=group, name=f"{SCHEMA_PREFIX}{name}", node=node)
        for group, options in schema.OPTION_SCHEMAS.items():
            for name, node in options.items():
                store.store(group=group, name=f"{SCHEMA_PREFIX}{name}", node=node)
        _stored.add(schema.TrainConfig)
        # conf/hydra/launcher/slurm.yaml sizes SLURM jobs with it.
        OmegaConf.register_new_resolver("hydralearn.gpus_per_node", _gpus_per_node, replace=True)
    for config_cls, (group, name) in registry.places().items():
        if config_cls not in _stored:
            store.store(group=group, name=f"{SCHEMA_PREFIX}{name}", node=config_cls)
            _stored.add(config_cls)


def _gpus_per_node(platform, devices_per_host: int) -> int | None:
    """A GPU host's devices (one process per node drives them all); null elsewhere."""
    is_gpu = getattr(platform, "value", platform) == "gpu"  # the Platform enum, or its name
    return devices_per_host if is_gpu and devices_per_host > 0 else None


def load_entry_point_plugins() -> list[str]:
    """Import every module that installed packages declare under `hydralearn.plugins`;
    ConfigError naming each entry point that cannot be imported, and why."""
    names, errors = [], []
    for entry in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        try:
            entry.load()
        except Exception as e:  # noqa: BLE001 - a plugin's import can fail in any way
            package = entry.dist.name if entry.dist else "its package"
            errors.append(f"plugin '{entry.name} = {entry.value}' (entry point group {PLUGIN_GROUP} "
                          f"of {package}) cannot be imported: {_cause(e)}; fix or uninstall {package}")
            continue
        names.append(entry.value)
    if errors:
        raise ConfigError(errors)
    return names


def load_config_plugins(modules: list[str]) -> list[str]:
    """Import the modules a config's `plugins:` names and store the schemas they registered;
    one error line per module that cannot be imported."""
    errors = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - a plugin's import can fail in any way
            errors.append(f"plugins: cannot import {name!r}: {_cause(e)} (a plugin module must be "
                          "importable: install its package or put its directory on PYTHONPATH)")
    register_schemas()
    return errors


def _cause(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__
