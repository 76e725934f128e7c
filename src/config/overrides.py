"""Every problem of a command line whose composition failed, reported at once.

Hydra stops at the first bad override. Only then (a valid command line composes once), the
config is composed with the group choices alone and each key override is tried on it in
turn, as Hydra applies them (`key=v` sets an existing key, `+key=v` adds one, `++key=v`
sets or adds, `~key` deletes), so one run of the command names every bad override. Runs
inside the compose context of config/compose.py.
"""

import dataclasses

from hydra import compose as hydra_compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from hydralearn.config.store import is_schema
from hydralearn.config.validate import describe, unknown_keys
from hydralearn.errors import ConfigError, closest


def parse(overrides: list[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as e:
        raise ConfigError([f"cannot parse override: {str(e).strip().splitlines()[0]}"]) from None


def is_group(override: Override) -> bool:
    """A defaults-list choice (`model=llama2_7b`, `+experiment=x`), not a key."""
    loader = GlobalHydra.instance().config_loader()
    return bool(loader.get_group_options(override.key_or_group))


def key_overrides(overrides: list[str]) -> list[Override]:
    return [o for o in parse(overrides) if not o.key_or_group.startswith("hydra.") and not is_group(o)]


def diagnose(overrides: list[str], config_name: str) -> list[str]:
    parsed = parse(overrides)
    groups = [o for o in parsed if is_group(o)]
    base = [o.input_line for o in parsed if o.key_or_group.startswith("hydra.")]
    try:
        errors = _groups_outside_defaults(groups, base, config_name)
    except (ConfigCompositionException, MissingConfigException) as e:
        return [describe_failure(e)]  # a chosen option's file is wrong, not an override
    if errors:
        return errors
    try:
        cfg = hydra_compose(config_name, overrides=base + [o.input_line for o in groups])
    except (ConfigCompositionException, MissingConfigException) as e:
        return [describe_failure(e)]
    for override in parsed:
        if override not in groups and not override.key_or_group.startswith("hydra."):
            errors += _apply(cfg, override)
    return errors + unknown_keys(cfg)


def describe_failure(e: Exception) -> str:
    """A composition error as one line: OmegaConf's fields where Hydra kept its cause."""
    cause = composition_cause(e)
    if isinstance(cause, OmegaConfBaseException):
        return describe(cause)
    if isinstance(e, MissingConfigException):
        return missing_option(e)
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def library_failure(e: Exception, overrides: list[str]) -> str:
    """One line for a composition that Hydra or OmegaConf ended with an error of their own
    (an AttributeError, an AssertionError) instead of a composition error: only the command
    line decides a composition, so it is the user's to change."""
    try:
        keys = [o.key_or_group for o in parse(overrides)]
    except ConfigError:
        keys = []
    params = [k for k in keys if k == "hydra.sweeper.params" or k.startswith("hydra.sweeper.params.")]
    if params:
        return (f"{params[0]}: Hydra 1.3 cannot set hydra.sweeper.params on the command line (it "
                "merges into a null default); sweep there directly (-m trainer.steps=1,2) or set "
                "hydra.sweeper.params in a config file, e.g. an experiment's `hydra:` node")
    cause = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"cannot compose the config with these overrides: {type(e).__name__}: {cause}".rstrip(": ")


def composition_cause(e: Exception) -> BaseException | None:
    """The OmegaConf error behind a Hydra composition error: Hydra chains a config file's
    merge error as the context, an override's as the cause."""
    return e.__cause__ or e.__context__


def missing_option(e: MissingConfigException) -> str:
    group, _, option = (e.missing_cfg_file or "").rpartition("/")
    options = sorted(o for o in (e.options or []) if not is_schema(o))
    if group and options:
        return (f"{group}={option}: no such option{closest(option, options)} "
                f"(valid options: {', '.join(options)})")
    return str(e).strip().splitlines()[0]


def _groups_outside_defaults(groups: list[Override], base: list[str], config_name: str) -> list[str]:
    """`experiment=x` for a group the defaults list does not name needs `+experiment=x`."""
    added = [o.input_line for o in groups if o.is_add() or o.is_force_add()]
    choices = hydra_compose(config_name, overrides=base + added, return_hydra_config=True).hydra.runtime.choices
    return [f"{o.input_line}: '{o.key_or_group}' is not in the defaults list; to add it use "
            f"+{o.input_line}" for o in groups
            if not (o.is_add() or o.is_force_add() or o.is_delete()) and o.key_or_group not in choices]


def _apply(cfg: DictConfig, override: Override) -> list[str]:
    """One key override applied to `cfg` as Hydra applies it; the problems, if any."""
    key, value = override.key_or_group, override.value()
    current = _current(cfg, key)
    try:
        if override.is_delete():
            if current is _ABSENT:
                return [f"unknown key {key}{_closest(cfg, key)}"]
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(cfg, parent) if parent else cfg
            schema = OmegaConf.get_type(node)
            if dataclasses.is_dataclass(schema) and leaf in {f.name for f in dataclasses.fields(schema)}:
                return [f"cannot delete {key}: every config has it (a field of {schema.__name__}); "
                        f"set it instead ({key}=...)"]
            if current is None:
                return [f"cannot delete {key}: Hydra 1.3 cannot delete a key whose value is null; "
                        f"set it instead ({key}=...)"]
            with open_dict(cfg):
                del node[leaf]
        elif override.is_add():
            if current not in (_ABSENT, None) and not isinstance(value, (dict, list)):
                return [f"cannot add {key}: it already exists; set it with {key}=... (no '+')"]
            OmegaConf.update(cfg, key, value, merge=True, force_add=True)
        elif override.is_force_add():
            OmegaConf.update(cfg, key, value, merge=True, force_add=True)
        elif current is _ABSENT:
            return [f"unknown key {key}{_closest(cfg, key)}"]
        else:
            OmegaConf.update(cfg, key, value, merge=True)
    except OmegaConfBaseException as e:
        return [describe(e)]
    return []


_ABSENT = object()
_UNRESOLVED = object()  # a key whose value is an interpolation: present, not null


def _current(cfg: DictConfig, key: str):
    """The value at `key`, _ABSENT if there is none. An interpolation is not resolved: this
    composition has no Hydra config, and `name: ${hydra:runtime.choices.model}` names it."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, throw_on_resolution_failure=False) if parent else cfg
    if isinstance(node, DictConfig) and leaf in node and OmegaConf.is_interpolation(node, leaf):
        return _UNRESOLVED
    return OmegaConf.select(cfg, key, throw_on_missing=False, default=_ABSENT)


def _closest(cfg: DictConfig, key: str) -> str:
    parent = key.rpartition(".")[0]
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if not isinstance(node, DictConfig):
        return ""
    return closest(key, [f"{parent}.{k}" if parent else str(k) for k in node])
