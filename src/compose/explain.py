"""Where a config value comes from: the files of Hydra's defaults tree that set it, in merge
order (the last wins), the defaults entry or override that chose each file, and command-line
overrides; then the composed value, its interpolation, and the value after autos are resolved.
"""

import dataclasses
from pathlib import Path
from typing import Any

from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import OmegaConf

from hydralearn.compose import config as compose_config
from hydralearn.compose.validate import ConfigError, to_container

_UNSET = object()

@dataclasses.dataclass(frozen=True)
class Source:
    where: str  # "conf/model/llama2_7b.yaml" or "command line"
    how: str  # why that file is in the composition
    value: Any

@dataclasses.dataclass(frozen=True)
class Explanation:
    key: str
    sources: tuple[Source, ...]  # merge order: the last one wins
    composed: Any  # as written in the winning source (an interpolation stays a string)
    value: Any  # after interpolation
    resolved: Any  # after every auto is made concrete for the stated hardware

def explain(key: str, overrides: list[str] = ()) -> Explanation:
    overrides = list(overrides)
    composed_cfg = compose_config.compose(overrides)  # raises ConfigError for bad overrides
    resolved = _select(to_container(_resolved(overrides)), key)
    if resolved is _UNSET:
        raise ConfigError([f"--explain {key}: no such key in the config"])
    defaults, config_overrides = _defaults_tree(overrides)
    choices = _command_line_choices(overrides)
    sources = [s for d in defaults for s in _file_sources(d, key, choices, defaults)]
    sources += [Source(where="command line", how=o.input_line, value=o.value())
                for o in config_overrides if o.key_or_group == key]
    composed = OmegaConf.to_container(composed_cfg, resolve=False)
    value = OmegaConf.select(composed_cfg, key, default=resolved)
    return Explanation(key=key, sources=tuple(sources), composed=_select(composed, key),
                       value=value, resolved=resolved)

def format_explanation(e: Explanation) -> str:
    lines = [f"{e.key} = {e.resolved!r}"]
    if not e.sources:
        lines.append("  not set by any file or override: the schema's default")
    for i, s in enumerate(e.sources):
        verdict = "sets it" if i == len(e.sources) - 1 else "overridden later"
        lines.append(f"  {s.where}: {s.value!r} ({verdict}; {s.how})")
    if e.composed is not _UNSET and e.composed != e.value:
        lines.append(f"  {e.composed!r} interpolates to {e.value!r}")
    if e.value != e.resolved and e.sources:
        lines.append(f"  {e.value!r} is an auto, resolved for the stated hardware to {e.resolved!r}")
    return "\n".join(lines)

def _defaults_tree(overrides: list[str]):
    with initialize_config_dir(config_dir=str(compose_config.CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        tree = loader.compute_defaults_list(config_name="train", overrides=overrides,
                                            run_mode=RunMode.RUN)
    defaults = [d for d in tree.defaults if not d.config_path.startswith("hydra/")
                and d.config_path != "hydra/config"]
    return defaults, tree.config_overrides


def _command_line_choices(overrides: list[str]) -> dict[str, str]:
    """Group -> option chosen on the command line (`model=llama2_7b`, `+experiment=x`)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    conf = Path(compose_config.CONF_DIR)
    return {o.key_or_group: str(o.value()) for o in parsed
            if (conf / o.key_or_group).is_dir() and isinstance(o.value(), str)}

def _file_sources(default, key: str, choices: dict, defaults: list) -> list[Source]:
    path = Path(compose_config.CONF_DIR) / f"{default.config_path}.yaml"
    content = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    content.pop("defaults", None)
    package = default.package or ""
    if package and not key.startswith(package + "."):
        return []
    value = _select(content, key[len(package) + 1:] if package else key)
    if value is _UNSET:
        return []
    return [Source(where=f"conf/{default.config_path}.yaml", value=value,
                   how=_chosen_by(default, choices, defaults))]

def _chosen_by(default, choices: dict, defaults: list) -> str:
    if default.primary:
        return "the primary config"
    group, _, option = default.config_path.rpartition("/")
    if choices.get(group) == option:
        return f"command-line override {group}={option}"
    for d in defaults:  # an experiment file may override a group in its own defaults list
        if d.config_path.startswith("experiment/") and _experiment_overrides(d).get(group) == option:
            return f"`override /{group}: {option}` in conf/{d.config_path}.yaml"
    return f"defaults entry `{group.rpartition('/')[2]}: {option}` of conf/{default.parent}.yaml"

def _experiment_overrides(default) -> dict[str, str]:
    path = Path(compose_config.CONF_DIR) / f"{default.config_path}.yaml"
    out = {}
    for entry in OmegaConf.to_container(OmegaConf.load(path)).get("defaults", []):
        if isinstance(entry, dict):
            for k, v in entry.items():
                if k.startswith("override /"):
                    out[k.removeprefix("override /")] = v
    return out

def _select(tree: Any, key: str) -> Any:
    for part in key.split(".") if key else []:
        if not isinstance(tree, dict) or part not in tree:
            return _UNSET
        tree = tree[part]
    return tree

def _resolved(overrides: list[str]):
    from hydralearn.compose.plan import load_resolved
    return load_resolved(overrides)
