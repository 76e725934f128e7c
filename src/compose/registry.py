"""The `_target_` allowlist: a config file may only name classes registered here.

Classes of this package register themselves with `@register`; a user extends the allowlist
explicitly by calling `register` on their own class before composing. A target naming a
module of this package is imported on demand, so a new variant needs no edit here.
"""

import importlib

_ALLOWED: dict[str, type] = {}
_BY_CONFIG: dict[type, type] = {}
_PACKAGE = "hydralearn."


class TargetError(ValueError):
    """A `_target_` that is not allowlisted or cannot be found."""


def target_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register(cls: type) -> type:
    """Allow `cls` as a `_target_`. It must define a nested dataclass `Config`."""
    if not hasattr(cls, "Config"):
        raise TypeError(f"{target_name(cls)} needs a nested `Config` dataclass to be registered")
    _ALLOWED[target_name(cls)] = cls
    _BY_CONFIG[cls.Config] = cls
    return cls


def layer_class(config) -> type:
    """The registered class whose nested `Config` is the type of `config`."""
    return _BY_CONFIG[type(config)]


def instantiate(config, **kwargs):
    return layer_class(config)(config, **kwargs)


def resolve(target: str) -> type:
    """The registered class for `target`, or TargetError saying why it is refused."""
    if target in _ALLOWED:
        return _ALLOWED[target]
    module_name, _, _ = target.rpartition(".")
    if target.startswith(_PACKAGE) and module_name:
        try:
            importlib.import_module(module_name)
        except ImportError:
            pass
        if target in _ALLOWED:
            return _ALLOWED[target]
    raise TargetError(
        f"_target_ '{target}' is not allowed: only registered hydralearn classes may be "
        "instantiated from config (register your own with hydralearn.compose.registry.register)"
    )


def registered() -> list[str]:
    return sorted(_ALLOWED)
