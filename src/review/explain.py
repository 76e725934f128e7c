"""Where a config value comes from: the schema default and the files of Hydra's defaults tree
that set it, in merge order (the last wins), the defaults entry or override that chose each
file, and command-line overrides; then the composed value, its interpolation, and the value
after autos are resolved. Files are found where Hydra found them (conf/, --config-dir,
hydra.searchpath, plugins)."""

import dataclasses
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from hydralearn.config import compose as compose_config
from hydralearn.config.compose import DEFAULT, Location, to_container
from hydralearn.config.validate import validate
from hydralearn.config.overrides import is_group, parse
from hydralearn.errors import ConfigError

_UNSET = object()


@dataclasses.dataclass(frozen=True)
class Source:
    where: str  # "conf/model/llama2_7b.yaml", "schema model/base_decoder" or "command line"
    how: str  # why that file is in the composition
    value: Any


@dataclasses.dataclass(frozen=True)
class Explanation:
    key: str
    sources: tuple[Source, ...]  # merge order: the last one wins
    composed: Any  # as written in the winning source (an interpolation stays a string)
    value: Any  # after interpolation
    resolved: Any  # after every auto is made concrete for the stated hardware


def explain(key: str, overrides: list[str] = (), location: Location = DEFAULT) -> Explanation:
    overrides = list(overrides)
    from hydralearn.compose.resolve import resolve
    from hydralearn.review.plan import planned_device_count

    composed_cfg = compose_config.compose(overrides, location)  # once: checked, then explained
    config = validate(composed_cfg)
    resolved = _select(to_container(resolve(config, device_count=planned_device_count(config))),
                       key)  # ConfigError if bad
    if resolved is _UNSET:
        raise ConfigError([f"--explain {key}: no such key in the config"])
    files = _Files(composed_cfg.hydra.runtime.config_sources)
    with compose_config.hydra_session(location):
        loader = GlobalHydra.instance().config_loader()
        tree = loader.compute_defaults_list(config_name=location.config_name, overrides=overrides,
                                            run_mode=RunMode.RUN)
        choices = {o.key_or_group: str(o.value()) for o in parse(overrides)
                   if is_group(o) and isinstance(o.value(), str)}
    defaults = [d for d in tree.defaults if not d.config_path.startswith("hydra/")]
    sources = [s for d in defaults for s in _sources(d, key, choices, defaults, files)]
    sources += [Source(where="command line", how=o.input_line, value=o.value())
                for o in tree.config_overrides if o.key_or_group == key]
    composed = OmegaConf.to_container(composed_cfg, resolve=False)
    value = OmegaConf.select(composed_cfg, key, default=resolved)
    return Explanation(key=key, sources=tuple(sources), composed=_select(composed, key),
                       value=value, resolved=resolved)


def format_explanation(e: Explanation) -> str:
    lines = [f"{e.key} = {e.resolved!r}"]
    for i, s in enumerate(e.sources):
        verdict = "sets it" if i == len(e.sources) - 1 else "overridden later"
        lines.append(f"  {s.where}: {s.value!r} ({verdict}; {s.how})")
    if e.composed is not _UNSET and e.composed != e.value:
        lines.append(f"  {e.composed!r} interpolates to {e.value!r}")
    if e.value != e.resolved and e.sources:
        lines.append(f"  {e.value!r} is an auto, resolved for the stated hardware to {e.resolved!r}")
    return "\n".join(lines)


class _Files:
    """Config files by path, looked up in the search path Hydra composed with."""

    def __init__(self, config_sources):
        self.dirs = [Path(str(s.path).removeprefix("file://")) for s in config_sources
                     if s.schema == "file"]

    def load(self, config_path: str) -> tuple[str, dict] | None:
        for directory in self.dirs:
            path = directory / f"{config_path}.yaml"
            if path.is_file():
                return str(path), OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        try:  # a schema in Hydra's ConfigStore (config/store.py)
            node = ConfigStore.instance().load(config_path=f"{config_path}.yaml").node
        except Exception:  # noqa: BLE001 - not in the store either: nothing to show
            return None
        return f"schema {config_path}", OmegaConf.to_container(node, resolve=False)


def _sources(default, key: str, choices: dict, defaults: list, files: _Files) -> list[Source]:
    found = files.load(default.config_path)
    if found is None:
        return []
    where, content = found
    content.pop("defaults", None)
    package = default.package or ""
    if package and not key.startswith(package + "."):
        return []
    value = _select(content, key[len(package) + 1:] if package else key)
    if value is _UNSET:
        return []
    how = "the schema's default" if where.startswith("schema ") else _chosen_by(default, choices, defaults, files)
    return [Source(where=_short(where), value=value, how=how)]


def _short(where: str) -> str:
    """conf/... for the package's own files, the full path for a user's."""
    path = Path(where)
    conf = compose_config.CONF_DIR
    return f"conf/{path.relative_to(conf)}" if path.is_absolute() and path.is_relative_to(conf) else where


def _chosen_by(default, choices: dict, defaults: list, files: _Files) -> str:
    if default.primary:
        return "the primary config"
    group, _, option = default.config_path.rpartition("/")
    if choices.get(group) == option:
        return f"command-line override {group}={option}"
    for d in defaults:  # an experiment file may override a group in its own defaults list
        if d.config_path.startswith("experiment/") and _overridden_in(d, files).get(group) == option:
            return f"`override /{group}: {option}` in {d.config_path}.yaml"
    return f"defaults entry `{group.rpartition('/')[2]}: {option}` of {default.parent}.yaml"


def _overridden_in(default, files: _Files) -> dict[str, str]:
    found = files.load(default.config_path)
    out = {}
    for entry in (found[1].get("defaults", []) if found else []):
        if isinstance(entry, dict):
            out |= {k.removeprefix("override /"): v for k, v in entry.items() if k.startswith("override /")}
    return out


def _select(tree: Any, key: str) -> Any:
    for part in key.split(".") if key else []:
        if not isinstance(tree, dict) or part not in tree:
            return _UNSET
        tree = tree[part]
    return tree
