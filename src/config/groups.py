"""The options a user can pick in each config group, read from the config sources a composition
used (its `hydra.runtime.config_sources`: conf/, --config-dir, hydra.searchpath, plugins'
directories, Hydra's own package and the ConfigStore).

Hydra's own listing (behind `--help`'s $APP_CONFIG_GROUPS) copies its whole config repository,
ConfigStore included, once per group: with hydralearn's schemas that was 1.8 M deep copies,
seconds per `--help`. Here each source is asked directly, through Hydra's public ConfigSource
plugins. The schemas options extend (`base_<name>`, config/store.py) are not options.
"""

from hydra.core.object_type import ObjectType
from hydra.core.plugins import Plugins
from hydra.plugins.config_source import ConfigSource

from hydralearn.config.store import is_schema


def group_options(config_sources) -> dict[str, list[str]]:
    """{group: its options, sorted} for every group that has options, `hydra/...` included."""
    kinds = {kind.scheme(): kind for kind in Plugins.instance().discover(ConfigSource)}
    sources = [kinds[s.schema](provider=s.provider, path=f"{s.schema}://{s.path}")
               for s in config_sources]

    def listed(path: str, kind: ObjectType) -> list[str]:
        return sorted({name for source in sources if source.is_group(path)
                       for name in source.list(path, kind)})

    found = {}

    def walk(parent: str) -> None:
        for name in listed(parent, ObjectType.GROUP):
            group = f"{parent}/{name}" if parent else name
            if options := [o for o in listed(group, ObjectType.CONFIG) if not is_schema(o)]:
                found[group] = options
            walk(group)

    walk("")
    return found
