"""JSON Schema (draft 2020-12) generated from the config dataclasses, for YAML editors.

`schema()` describes a whole composed config (conf/train.yaml and `# @package _global_`
experiments); `group_schema("model/ffn")` describes one group option file. Nodes with a
`_target_` (model, position, ffn, norm, ...) are a `anyOf` over every registered layer
Config, each keyed by its `_target_` constant. Nothing is required, because a file sets only
part of a config (the rest comes from its defaults list), and every value may also be an
interpolation `${...}` or `???`. Unknown keys are refused, as validate.py refuses them.
"""

import dataclasses
import enum
import types
import typing
from typing import Any

from hydralearn.config import schema as config_schema
from hydralearn.config.store import register_schemas
from hydralearn.layers import registry

INTERPOLATION = {"type": "string", "pattern": r"^(\$\{.*\}|\?\?\?)$"}
DEFAULTS_LIST = {"type": "array", "description": "Hydra defaults list"}


def schema() -> dict:
    """The schema of a whole config (train.yaml, experiments), with every layer in $defs."""
    register_schemas()  # every layer config, the package's and installed plugins'
    defs: dict[str, Any] = {}
    root = _dataclass(config_schema.TrainConfig, defs)
    root["properties"] |= {"hydra": {"type": "object"}}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "hydralearn config", **root, "$defs": defs}


def group_schema(group: str) -> dict:
    """The schema of one option file of config group `group` ("optim", "model/ffn")."""
    full = schema()
    node = full
    for part in group.split("/"):
        node = _property(node, part, full["$defs"])
    return {"$schema": full["$schema"], "title": f"hydralearn {group} option",
            **node, "$defs": full["$defs"]}


def _property(node: dict, name: str, defs: dict) -> dict:
    node = _unwrap(node, defs)
    if "properties" not in node and "anyOf" not in node:  # Hydra's own node (hydra/launcher/...)
        return {"type": "object"}
    if "properties" not in node:  # any registered layer: the first Config that has the field
        for option in node["anyOf"]:
            target = _unwrap(option, defs)
            if name in target.get("properties", {}):
                return target["properties"][name]
    return node["properties"][name]


def _unwrap(node: dict, defs: dict) -> dict:
    """Drop the interpolation alternative and follow a $ref."""
    while "anyOf" in node and node["anyOf"][-1] is INTERPOLATION:
        node = node["anyOf"][0]
    return defs[node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node


def _type(tp: Any, defs: dict) -> dict:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:  # inside a mapping or list: anything (e.g. a sharding rule's mesh axes)
        return {}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type(a, defs) for a in args]}
    if tp is type(None):
        return {"type": "null"}
    if dataclasses.is_dataclass(tp):
        name = tp.__qualname__.replace(".", "_")
        if name not in defs:
            defs[name] = {}  # reserve first: a Config may refer to itself through Any
            defs[name] = _dataclass(tp, defs)
        return {"$ref": f"#/$defs/{name}"}
    if origin is dict:
        return {"type": "object", "additionalProperties": _with_interpolation(_type(args[1], defs))}
    if origin in (list, tuple):
        return {"type": "array", "items": _type(args[0], defs)}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    scalar = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return {"type": scalar[tp]} if tp in scalar else {}


def _any_layer(defs: dict) -> dict:
    """A node chosen by `_target_`: any of the registered layer Configs.

    anyOf, not oneOf, and `_target_` not required: an experiment may set one field of a layer
    (`model: {tie_embeddings: true}`) and leave its `_target_` to the defaults list."""
    options = []
    for target in registry.registered():
        cls = registry.config_class(target)
        name = f"layer:{target}"
        if name not in defs:
            defs[name] = {}
            body = _dataclass(cls, defs)
            body["properties"] = {**body["properties"], "_target_": {"const": target}}
            defs[name] = body
        options.append({"$ref": f"#/$defs/{name}"})
    return {"anyOf": options}


def _dataclass(cls: type, defs: dict) -> dict:
    hints = typing.get_type_hints(cls)
    properties = {"defaults": DEFAULTS_LIST}
    for field in dataclasses.fields(cls):
        # A field typed Any holds a layer chosen by `_target_` (validate.py's rule too), unless
        # its metadata gives its JSON Schema (a number or `auto`, say).
        tp = hints[field.name]
        if "json_schema" in field.metadata:
            prop = _with_interpolation(dict(field.metadata["json_schema"]))
        else:
            prop = _with_interpolation(_any_layer(defs) if tp is Any else _type(tp, defs))
        doc = _default_text(field)
        if doc:
            prop["description"] = doc
        properties[field.name] = prop
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _with_interpolation(prop: dict) -> dict:
    return {"anyOf": [prop, INTERPOLATION]} if prop else prop


def _default_text(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING and field.default != "???":
        value = field.default.value if isinstance(field.default, enum.Enum) else field.default
        return f"default: {value!r}"
    return ""
