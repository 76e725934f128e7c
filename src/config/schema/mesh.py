"""Schemas of conf/mesh (named device axes and their sizes) and conf/sharding (logical axis
names -> mesh axes). Both are dicts so one entry can be overridden (`mesh.axes.tensor=2`,
`sharding.rules.mlp=fsdp`)."""

import dataclasses
import enum
from typing import Any

# Outermost first: with several hosts `data` spans hosts and the inner axes stay inside one.
MESH_AXES = ("data", "fsdp", "tensor", "expert", "seq")
# Logical axes of the inputs, not of any parameter; they must have rules too.
INPUT_AXES = ("batch", "length")


class MeshMode(enum.Enum):
    fixed = "fixed"  # use `axes` as given (one may be -1: the remaining devices)
    auto = "auto"  # axes at -1 are chosen from hardware, processes, devices and model size


@dataclasses.dataclass(kw_only=True)
class MeshConfig:
    mode: MeshMode = MeshMode.auto
    # Axis name -> size. fixed: one axis may be -1; auto: every -1 axis is chosen, positive
    # sizes are kept as constraints.
    axes: dict[str, int] = dataclasses.field(default_factory=lambda: {
        "data": -1, "fsdp": -1, "tensor": 1, "expert": 1, "seq": 1})

    def errors(self) -> list[str]:
        out = [f"mesh.axes.{name}: unknown mesh axis; valid axes: {', '.join(MESH_AXES)}"
               for name in self.axes if name not in MESH_AXES]
        inferred = [n for n, s in self.axes.items() if s == -1]
        if self.mode is MeshMode.fixed and len(inferred) > 1:
            out.append(f"mesh.axes: only one axis may be -1, got {', '.join(inferred)} "
                       "(or use mesh=auto to choose them)")
        out += [f"mesh.axes.{n}={s} must be positive or -1" for n, s in self.axes.items()
                if s == 0 or s < -1]
        return out


def _fsdp_rules() -> dict[str, Any]:
    # Each weight split along `embed` over fsdp; hidden dimensions name the tensor axis, which
    # shards nothing while mesh.axes.tensor=1 and is tensor parallelism when it is larger.
    return {"batch": ["data", "fsdp"], "length": None, "layers": None, "vocab": "tensor",
            "embed": "fsdp", "mlp": "tensor", "heads": "tensor", "kv_heads": "tensor",
            "head_dim": None, "experts": "expert"}


@dataclasses.dataclass(kw_only=True)
class ShardingConfig:
    # Logical axis name -> mesh axis, list of mesh axes, or null (replicated).
    rules: dict[str, Any] = dataclasses.field(default_factory=_fsdp_rules)

    def errors(self) -> list[str]:
        out = []
        for name, target in self.rules.items():
            if not (target is None or isinstance(target, str)
                    or (isinstance(target, (list, tuple)) and all(isinstance(t, str) for t in target))):
                out.append(f"sharding.rules.{name}={target!r}: expected a mesh axis, a list of "
                           "mesh axes or null")
                continue
            out += [f"sharding.rules.{name}={target!r}: unknown mesh axis '{axis}'; valid axes: "
                    f"{', '.join(MESH_AXES)}" for axis in as_tuple(target) if axis not in MESH_AXES]
        out += [f"sharding.rules.{name} is required (the rule for the inputs' {name} axis)"
                for name in INPUT_AXES if name not in self.rules]
        return out

    def mesh_axes(self, logical: str) -> tuple[str, ...]:
        return as_tuple(self.rules.get(logical))

    def used_mesh_axes(self) -> set[str]:
        return {axis for target in self.rules.values() for axis in as_tuple(target)}


def as_tuple(target: Any) -> tuple[str, ...]:
    if target is None:
        return ()
    return (target,) if isinstance(target, str) else tuple(target)
