"""Typed validation of a composed config: plain containers in, frozen dataclasses out.

Every problem is collected (unknown keys with the closest valid spelling, missing values,
wrong types, cross-field rules) and raised together as one ConfigError before any JAX work.
A node with `_target_` is checked against the registered class's nested `Config`.
"""

import dataclasses
import difflib
import enum
import types
import typing
from typing import Any

from omegaconf import MISSING

from hydralearn.compose.registry import TargetError, layer_class, resolve, target_name


class ConfigError(ValueError):
    """User-facing config problems; `errors` holds one line per problem."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def closest(name: str, options: typing.Iterable[str]) -> str:
    """"; did you mean 'x'?" for the nearest option, compared within the same parent key."""
    parent = name.rpartition(".")[0]
    options = [o for o in options if o.rpartition(".")[0] == parent] or list(options)
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else ""


def build(schema: Any, data: Any, path: str = "") -> Any:
    """`data` (dicts, lists, scalars) as an instance of `schema`; raises ConfigError."""
    errors: list[str] = []
    value = _convert(schema, data, path, errors)
    if errors:
        raise ConfigError(errors)
    return value


def _convert(schema: Any, data: Any, path: str, errors: list[str]) -> Any:
    where = path or "<root>"
    if isinstance(data, str) and data == MISSING:
        errors.append(f"{where} is required but has no value (set it with {path}=...)")
        return None
    origin, args = typing.get_origin(schema), typing.get_args(schema)
    if schema is Any:
        if isinstance(data, dict) and "_target_" in data:
            return _convert_target(data, path, errors)
        return data
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], data, path, errors) if len(inner) == 1 else data
    if dataclasses.is_dataclass(schema):
        return _convert_dataclass(schema, data, path, errors)
    if origin is dict:
        if not isinstance(data, dict):
            errors.append(f"{where}: expected a mapping, got {data!r}")
            return None
        return {k: _convert(args[1], v, f"{path}.{k}", errors) for k, v in data.items()}
    if origin in (list, tuple):
        if not isinstance(data, (list, tuple)):
            errors.append(f"{where}: expected a list, got {data!r}")
            return None
        return tuple(_convert(args[0], v, f"{path}[{i}]", errors) for i, v in enumerate(data))
    if isinstance(schema, type) and issubclass(schema, enum.Enum):
        names = [m.value for m in schema]
        if data not in names:
            errors.append(f"{where}={data!r} is not valid; choose one of: {', '.join(names)}")
            return None
        return schema(data)
    return _convert_scalar(schema, data, where, errors)


def _convert_scalar(schema: type, data: Any, where: str, errors: list[str]) -> Any:
    ok = {
        bool: isinstance(data, bool),
        int: isinstance(data, int) and not isinstance(data, bool),
        float: isinstance(data, (int, float)) and not isinstance(data, bool),
        str: isinstance(data, str),
    }.get(schema, True)
    if not ok:
        errors.append(f"{where}: expected {schema.__name__}, got {data!r} ({type(data).__name__})")
        return None
    return float(data) if schema is float else data


def _convert_target(data: dict, path: str, errors: list[str]) -> Any:
    try:
        cls = resolve(data["_target_"])
    except TargetError as e:
        errors.append(f"{path or '<root>'}: {e}")
        return None
    body = {k: v for k, v in data.items() if k != "_target_"}
    return _convert_dataclass(cls.Config, body, path, errors)


def _convert_dataclass(schema: type, data: Any, path: str, errors: list[str]) -> Any:
    where = path or "<root>"
    if not isinstance(data, dict):
        errors.append(f"{where}: expected a mapping, got {data!r}")
        return None
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    for key in data:
        if key not in fields:
            errors.append(f"unknown key {_join(path, key)}{closest(key, fields)}")
    values = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _convert(hints[name], data[name], _join(path, name), errors)
        elif field.default is MISSING:
            errors.append(f"{_join(path, name)} is required but has no value "
                          f"(set it with {_join(path, name)}=...)")
    if len(errors):
        return None
    return schema(**values)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def to_container(value: Any) -> Any:
    """Inverse of `build`: plain dicts for saving, `_target_` restored for layer configs."""
    if dataclasses.is_dataclass(value):
        out = {}
        if _is_layer_config(value):
            out["_target_"] = target_name(layer_class(value))
        for f in dataclasses.fields(value):
            out[f.name] = to_container(getattr(value, f.name))
        return out
    if isinstance(value, dict):
        return {k: to_container(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_container(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _is_layer_config(value: Any) -> bool:
    try:
        layer_class(value)
        return True
    except KeyError:
        return False
