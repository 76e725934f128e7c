"""Checks on a composed config that OmegaConf cannot express, and OmegaConf's own errors as
one-line messages (from the exception's fields, never its text).

OmegaConf already refuses wrong types, unknown enum values and unknown keys where a node is
typed. What is left here: every `_target_` must name a registered class (and its node is
typed by that class's schema), keys added with `+` to a typed node, missing values (all at
once), and each group's cross-field rules. The modules of the config's `plugins:` list are
imported first, so the layers they register can be checked and typed (docs/plugins.md).
"""

import dataclasses
import enum
import types
import typing
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import (ConfigKeyError, InterpolationResolutionError, OmegaConfBaseException,
                              ValidationError)

from hydralearn.config import allowlist
from hydralearn.config.run_dir import name_errors
from hydralearn.config.schema import Objective, Source, TrainConfig
from hydralearn.config.store import load_config_plugins
from hydralearn.data.check import check as check_data
from hydralearn.data.tokenizer import vocab_size
from hydralearn.errors import ConfigError, closest
from hydralearn.layers.registry import TargetError, config_class


def validate(cfg: DictConfig) -> TrainConfig:
    """The composed config (hydra node removed) as a TrainConfig; ConfigError with every problem."""
    cfg = cfg.copy()
    errors = allowlist.hydra_errors(cfg.get("hydra")) if "hydra" in cfg else []
    if "hydra" in cfg:
        with_struct_off(cfg, lambda c: c.pop("hydra"))
    errors += load_config_plugins(list(cfg.get("plugins") or []))
    errors += type_layers(cfg)
    errors += unknown_keys(cfg)
    errors += [f"{key} is required but has no value (set it with {key}=...)"
               for key in sorted(OmegaConf.missing_keys(cfg))]
    if errors:
        raise ConfigError(errors)
    try:
        config = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError([describe(e)]) from None
    errors = rule_errors(config)
    if errors:
        raise ConfigError(errors)
    return config


def validate_hydra(cfg: DictConfig) -> None:
    """The `hydra` node alone (for Hydra's own commands, which run no job): ConfigError if it
    names code nobody allowlisted."""
    errors = allowlist.hydra_errors(cfg.get("hydra"))
    if errors:
        raise ConfigError(errors)


def with_struct_off(cfg: DictConfig, action) -> Any:
    OmegaConf.set_struct(cfg, False)
    try:
        return action(cfg)
    finally:
        OmegaConf.set_struct(cfg, True)


def type_layers(cfg: DictConfig) -> list[str]:
    """Every node with a `_target_`: allowlisted, and typed by its registered schema (a YAML
    option that sets `_target_` without extending the schema is typed here)."""
    errors = []
    for path, node in _nodes(cfg):
        if "_target_" not in node:
            continue
        try:
            schema = config_class(str(node._target_))
        except TargetError as e:
            errors.append(f"{path or '<root>'}: {e}")
            continue
        if OmegaConf.get_type(node) is schema:
            continue
        try:
            typed = OmegaConf.merge(OmegaConf.structured(schema), node)
        except OmegaConfBaseException as e:
            errors.append(describe(e, prefix=path))
            continue
        parent, key = _parent(cfg, path)
        parent[key] = typed
    return errors


def unknown_keys(cfg: DictConfig) -> list[str]:
    """Keys a typed node does not define (OmegaConf lets `+key` add them, then drops them)."""
    errors = []
    for path, node in _nodes(cfg):
        schema = OmegaConf.get_type(node)
        if not dataclasses.is_dataclass(schema):
            continue
        fields = [f.name for f in dataclasses.fields(schema)]
        errors += [f"unknown key {_join(path, k)}{closest(_join(path, k), [_join(path, f) for f in fields])}"
                   for k in node if k not in fields]
    return errors


def rule_errors(config: TrainConfig) -> list[str]:
    """Each group's own rules (`errors()`), then the rules across groups."""
    errors = name_errors(config.name)
    for group in dataclasses.fields(config):
        check = getattr(getattr(config, group.name), "errors", None)
        if callable(check):
            errors += check()
    if not errors:
        errors += data_errors(config)
    ckpt, trainer = config.checkpoint, config.trainer
    sft, chat = config.objective.kind is Objective.sft, config.data.source is Source.chat
    if sft != chat:
        errors.append("objective=sft trains on chat data: set data=chat" if sft else
                      "data=chat marks which tokens are targets: train it with objective=sft")
    if ckpt.keep_best and not (trainer.eval_every and ckpt.every_steps
                               and ckpt.every_steps % trainer.eval_every == 0):
        errors.append(f"checkpoint.keep_best={ckpt.keep_best} ranks checkpoints by the eval at "
                      "their step: checkpoint.every_steps must be a positive multiple of "
                      f"trainer.eval_every (got {ckpt.every_steps} and {trainer.eval_every})")
    return errors


def data_errors(config: TrainConfig) -> list[str]:
    """The data's files and tokenizer (data/check.py), and the model's vocabulary against the
    tokenizer's: the embedding must have a row for every token id."""
    errors = check_data(config.data)
    vocab = config.model.vocab_size
    if errors or not isinstance(vocab, int) or isinstance(vocab, bool):
        return errors
    size = vocab_size(config.data)
    if size > vocab:
        errors.append(f"model.vocab_size={vocab} is smaller than the tokenizer's vocabulary "
                      f"({size}); set model.vocab_size={size} or more, or model.vocab_size=auto")
    return errors


def describe(e: OmegaConfBaseException, *, prefix: str = "") -> str:
    """One line for an OmegaConf error, from its fields."""
    key = _join(prefix, str(e.full_key)) if e.full_key else prefix or "<root>"
    if isinstance(e, InterpolationResolutionError):
        return f"{key}: cannot resolve an interpolation ({str(e.msg).splitlines()[0]})"
    if isinstance(e, ConfigKeyError) or isinstance(e, AttributeError):
        parent = getattr(e, "parent_node", None)
        options = [_join(key.rpartition(".")[0], str(k)) for k in parent] if parent is not None else []
        return f"unknown key {key}{closest(key, options)}"
    expected = _field_type(e)
    if isinstance(e, ValidationError) and isinstance(expected, type) and issubclass(expected, enum.Enum):
        return (f"{key}={e.value!r} is not valid; choose one of: "
                f"{', '.join(m.name for m in expected)}")
    if isinstance(e, ValidationError) and expected is not None:
        name = getattr(expected, "__name__", str(expected))
        return f"{key}: expected {name}, got {e.value!r} ({type(e.value).__name__})"
    return f"{key}: {str(e.msg).splitlines()[0]}"


def _field_type(e: OmegaConfBaseException) -> Any:
    """The schema type of the field the error is about, if its parent is a dataclass."""
    owner = e.object_type
    if owner in (dict, list) and typing.get_args(e.ref_type):  # an element of a typed container
        hint = typing.get_args(e.ref_type)[-1]
    elif dataclasses.is_dataclass(owner) and e.key is not None:
        hint = typing.get_type_hints(owner).get(str(e.key))
    else:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # Optional[T] -> T
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else None
    return hint


def _nodes(cfg: DictConfig, path: str = ""):
    """(dotted path, node) for every DictConfig in the tree, parents first."""
    yield path, cfg
    for key in list(cfg.keys()):
        if OmegaConf.is_missing(cfg, key) or OmegaConf.is_interpolation(cfg, key):
            continue
        child = cfg[key]
        if isinstance(child, DictConfig):
            yield from _nodes(child, _join(path, str(key)))
        elif isinstance(child, ListConfig):
            for i, item in enumerate(child):
                if isinstance(item, DictConfig):
                    yield from _nodes(item, f"{_join(path, str(key))}[{i}]")


def _parent(cfg: DictConfig, path: str) -> tuple[Any, Any]:
    head, _, key = path.rpartition(".")
    parent = OmegaConf.select(cfg, head) if head else cfg
    return parent, key


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
