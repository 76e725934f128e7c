"""Device mesh (conf/mesh) and logical-axis sharding rules (conf/sharding)."""

import dataclasses
import math
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor", "expert", "seq")


@dataclasses.dataclass(kw_only=True, frozen=True)
class MeshConfig:
    # Axis name -> size; one axis may be -1 (takes the remaining devices).
    axes: dict[str, int]

    def errors(self) -> list[str]:
        out = [f"mesh.axes.{name}: unknown mesh axis; valid axes: {', '.join(MESH_AXES)}"
               for name in self.axes if name not in MESH_AXES]
        inferred = [n for n, s in self.axes.items() if s == -1]
        if len(inferred) > 1:
            out.append(f"mesh.axes: only one axis may be -1, got {', '.join(inferred)}")
        out += [f"mesh.axes.{n}={s} must be positive or -1" for n, s in self.axes.items()
                if s == 0 or s < -1]
        return out


@dataclasses.dataclass(kw_only=True, frozen=True)
class ShardingConfig:
    # Logical axis name -> mesh axis, list of mesh axes, or null (replicated).
    rules: dict[str, Any]

    def errors(self) -> list[str]:
        out = []
        for name, target in self.rules.items():
            for axis in _as_tuple(target):
                if axis not in MESH_AXES:
                    out.append(f"sharding.rules.{name}={target!r}: unknown mesh axis '{axis}'; "
                               f"valid axes: {', '.join(MESH_AXES)}")
        return out

    def as_flax_rules(self) -> tuple[tuple[str, Any], ...]:
        return tuple((name, _as_rule(target)) for name, target in self.rules.items())


def _as_tuple(target: Any) -> tuple[str, ...]:
    if target is None:
        return ()
    return (target,) if isinstance(target, str) else tuple(target)


def _as_rule(target: Any) -> Any:
    axes = _as_tuple(target)
    return None if not axes else axes[0] if len(axes) == 1 else axes


def resolve_axes(axes: dict[str, int], device_count: int) -> dict[str, int]:
    """Concrete axis sizes for `device_count` devices; ValueError if they cannot fit."""
    known = math.prod(s for s in axes.values() if s != -1)
    if -1 in axes.values():
        if device_count % known:
            raise ValueError(f"mesh.axes {dict(axes)}: the fixed axes multiply to {known}, which does "
                             f"not divide the {device_count} devices available")
        return {n: (device_count // known if s == -1 else s) for n, s in axes.items()}
    if known != device_count:
        raise ValueError(f"mesh.axes {dict(axes)} multiply to {known} but there are {device_count} "
                         "devices; change an axis size or set one axis to -1")
    return dict(axes)


def make_mesh(axes: dict[str, int], devices: list | None = None) -> Mesh:
    """A mesh over all devices with every axis in Auto mode (sharding by propagation)."""
    devices = devices if devices is not None else jax.devices()
    shape = tuple(axes.values())
    device_array = np.asarray(devices).reshape(shape)
    return Mesh(device_array, tuple(axes), axis_types=(AxisType.Auto,) * len(axes))


def batch_sharding(mesh: Mesh, rules: ShardingConfig) -> NamedSharding:
    """(B, T) inputs: batch follows the `batch` rule, length the `length` rule."""
    spec = PartitionSpec(_as_rule(rules.rules.get("batch")), _as_rule(rules.rules.get("length")))
    return NamedSharding(mesh, spec)
