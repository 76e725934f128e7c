"""The `_target_` allowlist: a config may only name layer classes whose config is registered.

compose/ registers its optimizer and schedule schemas here too (their `_target_` names the
builder function in compose/), so every `_target_` of a config passes this one allowlist.

A layer's config schema is a jax-free dataclass with a `_target_` field whose default names
the layer class; `@register(group=..., name=...)` on it allowlists that class and records
where its schema belongs in the config tree (compose/ stores it in Hydra's ConfigStore as
`<group>/base_<name>`). A field whose value changes the layer's parameter shapes, dtypes or
structure says so in its metadata, `dataclasses.field(default=8, metadata={"shape": True})`:
the resume rule (config/resume_rule.py) then knows a checkpoint cannot survive a change to
it. The class itself is imported only when a model is built, so composing and validating
configs never imports jax. Third-party layers register the same way from their own package
(see docs/plugins.md); nothing else can be instantiated from config.
"""

import dataclasses
import importlib

_CONFIGS: dict[str, type] = {}  # _target_ -> its config dataclass
_PLACES: dict[type, tuple[str, str]] = {}  # config dataclass -> (group, name)


class TargetError(ValueError):
    """A `_target_` that is not allowlisted or cannot be imported."""


def default_target(config_cls: type) -> str:
    field = getattr(config_cls, "__dataclass_fields__", {}).get("_target_")
    if field is None or not isinstance(field.default, str):
        raise TypeError(f"{config_cls.__qualname__} needs a `_target_: str = '<module>.<Class>'` "
                        "field naming its layer class to be registered")
    return field.default


def register(*, group: str, name: str):
    """Class decorator for a layer's config dataclass: allowlist its `_target_` and store it as
    the schema `<group>/base_<name>`."""
    def decorate(config_cls: type) -> type:
        if not dataclasses.is_dataclass(config_cls):
            raise TypeError(f"{config_cls.__qualname__} must be a dataclass to be registered")
        target = default_target(config_cls)
        _refuse_replacing(_CONFIGS.get(target), config_cls, f"_target_ {target!r}")
        in_place = next((c for c, place in _PLACES.items() if place == (group, name)), None)
        _refuse_replacing(in_place, config_cls, f"{group}/base_{name}")
        _CONFIGS[target] = config_cls
        _PLACES[config_cls] = (group, name)
        return config_cls
    return decorate


def _refuse_replacing(registered: type | None, config_cls: type, what: str) -> None:
    """A plugin may add layers, never replace one: a built-in option must mean what it says.
    The same class imported again (same module and name) is the same registration."""
    if registered is not None and _name(registered) != _name(config_cls):
        raise ValueError(f"cannot register {_name(config_cls)}: {what} is already registered "
                         f"by {_name(registered)}")


def _name(config_cls: type) -> str:
    return f"{config_cls.__module__}.{config_cls.__qualname__}"


def config_class(target: str) -> type:
    """The registered config dataclass of `target`, or TargetError saying why it is refused."""
    if target not in _CONFIGS:
        raise TargetError(
            f"_target_ '{target}' is not allowed: only registered layer classes (and optimizer "
            "and schedule builders) may be instantiated from config (register your own: docs/plugins.md)")
    return _CONFIGS[target]


def places() -> dict[type, tuple[str, str]]:
    """Every registered config dataclass -> (group, name)."""
    return dict(_PLACES)


def registered() -> list[str]:
    return sorted(_CONFIGS)


def shape_fields() -> frozenset[str]:
    """Names of the fields that a registered config declares with `shape` metadata."""
    return frozenset(field.name for config_cls in _CONFIGS.values()
                     for field in dataclasses.fields(config_cls) if field.metadata.get("shape"))


def layer_class(config) -> type:
    """The layer class a (registered) config names; imported on first use."""
    target = config._target_
    config_class(target)  # allowlisted?
    module_name, _, class_name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise TargetError(f"_target_ '{target}' cannot be imported: {e}") from None


def instantiate(config, **kwargs):
    return layer_class(config)(config, **kwargs)
