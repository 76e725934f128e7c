"""Sharding rules (conf/sharding): logical axis names -> mesh axes, turned into NamedShardings.

Rules are a dict so one entry can be overridden (`sharding.rules.mlp=fsdp`). A value is a
mesh axis, a list of mesh axes, or null (replicated). Within one array a mesh axis is used at
most once: a later dimension whose rule names an axis already used stays unsharded on it
(the convention of flax's logical rules), so `embed=fsdp, mlp=fsdp` shards each matrix once.
"""

import math
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from hydralearn.config.schema import ShardingConfig
from hydralearn.config.schema.mesh import as_tuple

def _entry(axes: tuple[str, ...]) -> Any:
    return None if not axes else axes[0] if len(axes) == 1 else axes


def logical_to_spec(logical_axes: tuple[str | None, ...], rules: ShardingConfig) -> PartitionSpec:
    """PartitionSpec for an array whose dimensions carry these logical names."""
    used: set[str] = set()
    entries = []
    for name in logical_axes:
        axes = tuple(a for a in rules.mesh_axes(name) if a not in used) if name else ()
        used |= set(axes)
        entries.append(_entry(axes))
    return PartitionSpec(*entries)


def activation_sharding(mesh: Mesh, rules: ShardingConfig):
    """`shard(x, logical_axes)` for the model's activations: a sharding constraint on `mesh`."""
    def shard(x, logical_axes):
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, logical_to_spec(logical_axes, rules)))
    return shard


def missing_rules(params: nnx.State, rules: ShardingConfig) -> list[str]:
    """One error per logical axis the model uses that has no rule."""
    names = sorted({n for axes in _logical_axes(params).values() for n in axes if n}
                   - set(rules.rules))
    return [f"sharding.rules has no entry for logical axis '{n}' used by the model; add "
            f"sharding.rules.{n}=<mesh axis or null>" for n in names]


def param_specs(params: nnx.State, rules: ShardingConfig) -> nnx.State:
    """The PartitionSpec of every parameter (same tree as `params`)."""
    def spec(variable):
        return logical_to_spec(tuple(variable.get_metadata().get("out_sharding") or ()), rules)
    return jax.tree.map(spec, params, is_leaf=lambda x: isinstance(x, nnx.Variable))


def named_shardings(specs: nnx.State, mesh: Mesh) -> nnx.State:
    return jax.tree.map(lambda spec: NamedSharding(mesh, spec), specs,
                        is_leaf=lambda x: isinstance(x, PartitionSpec))


def indivisible(params: nnx.State, specs: nnx.State, axes: dict[str, int]) -> list[str]:
    """One error per parameter dimension its mesh axes do not divide evenly."""
    out = []
    flat_specs = dict(_flat(specs, leaf=PartitionSpec))
    for path, variable in _flat(params, leaf=nnx.Variable):
        logical = variable.get_metadata().get("out_sharding") or ()
        for dim, (size, entry) in enumerate(zip(variable.shape, flat_specs[path])):
            shards = math.prod(axes[a] for a in as_tuple(entry))
            if size % shards:
                out.append(f"parameter {path} dimension {dim} ('{logical[dim]}', size {size}) does "
                           f"not divide over mesh axes {entry} ({shards} devices); change "
                           f"sharding.rules.{logical[dim]} or the mesh")
    return out


def batch_spec(rules: ShardingConfig) -> PartitionSpec:
    """(B, T) inputs: batch follows the `batch` rule, length the `length` rule."""
    return logical_to_spec(("batch", "length"), rules)


def batch_errors(*, batch_size: int, seq_len: int, rules: ShardingConfig,
                 axes: dict[str, int], grad_accum: int = 1) -> list[str]:
    """The batch splits evenly: into trainer.grad_accum microbatches, each over the batch shards."""
    out = []
    for key, size, logical in (("data.batch_size", batch_size, "batch"), ("data.seq_len", seq_len, "length")):
        shards = math.prod(axes.get(a, 1) for a in rules.mesh_axes(logical))
        parts = grad_accum if logical == "batch" else 1
        if size % (shards * parts) == 0:
            continue
        where = f"the {shards} devices of mesh axes {list(rules.mesh_axes(logical))} (sharding.rules.{logical})"
        if parts > 1:
            out.append(f"{key}={size} must be divisible by trainer.grad_accum={parts} x {where} "
                       f"= {parts * shards}: each microbatch is split over those devices")
        else:
            out.append(f"{key}={size} must be divisible by {where}")
    return out


def unused_axes(rules: ShardingConfig, axes: dict[str, int]) -> list[str]:
    """Mesh axes with more than one device that no rule uses would only duplicate work."""
    return [f"mesh.axes.{a}={s} but no sharding rule uses mesh axis '{a}', so its devices would "
            f"repeat each other's work; set mesh.axes.{a}=1 or map a logical axis to it "
            f"(e.g. sharding=fsdp_tp for tensor)"
            for a, s in axes.items() if s > 1 and a not in rules.used_mesh_axes()]


def bytes_per_device(params: nnx.State, shardings: nnx.State) -> int:
    """Parameter bytes held by one device (the largest shard of each array)."""
    total = 0
    for (_, variable), (_, sharding) in zip(_flat(params, leaf=nnx.Variable),
                                            _flat(shardings, leaf=NamedSharding)):
        shard = sharding.shard_shape(variable.shape)
        total += int(np.prod(shard)) * np.dtype(variable.dtype).itemsize
    return total


def _logical_axes(params: nnx.State) -> dict[str, tuple]:
    return {p: tuple(v.get_metadata().get("out_sharding") or ()) for p, v in _flat(params, leaf=nnx.Variable)}


def _flat(tree, *, leaf: type) -> list[tuple[str, Any]]:
    pairs, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: isinstance(x, leaf))
    return [(jax.tree_util.keystr(path, simple=True, separator="/"), v) for path, v in pairs]
