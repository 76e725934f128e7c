"""Registers every schema in Hydra's ConfigStore, so YAML options can extend them.

`base_train` is the root (conf/train.yaml starts from it); each group schema is stored as
`<group>/base_<name>` (compose/schema) and each registered layer config likewise
(`model/ffn/base_moe`, from layers/*_config.py). Layer configs are found by importing every
`*_config` module of hydralearn.layers (jax-free) and those of installed plugins (entry point
group `hydralearn.plugins`, docs/plugins.md).
"""

import importlib
import importlib.metadata
import pkgutil

from hydra.core.config_store import ConfigStore

from hydralearn.compose import schema
from hydralearn.layers import registry

PLUGIN_GROUP = "hydralearn.plugins"
_stored: set[type] = set()


def register_schemas() -> None:
    """Idempotent: stores what is not stored yet (plugins may register more later)."""
    store = ConfigStore.instance()
    if not _stored:
        _import_layer_configs()
        load_entry_point_plugins()
        store.store(name="base_train", node=schema.TrainConfig)
        for group, (name, node) in schema.GROUPS.items():
            store.store(group=group, name=f"base_{name}", node=node)
        for group, options in schema.OPTION_SCHEMAS.items():
            for name, node in options.items():
                store.store(group=group, name=f"base_{name}", node=node)
        _stored.add(schema.TrainConfig)
    for config_cls, (group, name) in registry.places().items():
        if config_cls not in _stored:
            store.store(group=group, name=f"base_{name}", node=config_cls)
            _stored.add(config_cls)


def _import_layer_configs() -> None:
    import hydralearn.layers as layers
    for module in pkgutil.walk_packages(layers.__path__, prefix="hydralearn.layers."):
        if module.name.endswith("_config"):
            importlib.import_module(module.name)


def load_entry_point_plugins() -> list[str]:
    """Import every module that installed packages declare under `hydralearn.plugins`."""
    names = []
    for entry in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        entry.load()
        names.append(entry.value)
    return names
