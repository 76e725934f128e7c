"""Device mesh (conf/mesh): named axes, their sizes, and the automatic choice of a shape.

Axes are ordered data, fsdp, tensor, expert, seq; the first is outermost in the device
array, so with several hosts `data` spans hosts and the inner axes (fsdp, tensor, ...) stay
inside one host, where links are fastest, unless their sizes force them across. A pipeline
axis can be added to MESH_AXES later without changing this code.
"""

import dataclasses
import math

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding

from hydralearn.config.schema import ShardingConfig
from hydralearn.compose.sharding import batch_spec


def resolve_axes(axes: dict[str, int], device_count: int) -> dict[str, int]:
    """Concrete axis sizes for `device_count` devices; ValueError if they cannot fit."""
    known = math.prod(s for s in axes.values() if s != -1)
    if -1 in axes.values():
        if device_count % known:
            raise ValueError(_indivisible(axes, known, device_count))
        return {n: (device_count // known if s == -1 else s) for n, s in axes.items()}
    if known != device_count:
        raise ValueError(f"mesh.axes {dict(axes)} multiply to {known} but there are {device_count} "
                         "devices; change an axis size or set one axis to -1")
    return dict(axes)


def _indivisible(axes: dict[str, int], known: int, device_count: int) -> str:
    return (f"mesh.axes {dict(axes)}: the fixed sizes multiply to {known} but there are "
            f"{device_count} devices, which {known} does not divide; change an axis size")


@dataclasses.dataclass(frozen=True, kw_only=True)
class MeshFacts:
    """What `mesh=auto` decides from."""

    device_count: int
    devices_per_host: int
    train_bytes: float  # parameters + gradients + optimizer state, unsharded
    device_memory_bytes: float
    used_axes: frozenset[str]  # mesh axes some sharding rule uses


# Fraction of device memory the training state may take; the rest is for activations.
STATE_MEMORY_FRACTION = 0.4


def auto_axes(axes: dict[str, int], facts: MeshFacts) -> dict[str, int]:
    """Sizes for the -1 axes: pure data parallel when the state fits on one device, otherwise
    the smallest fsdp degree that makes it fit (preferring one that stays inside a host), the
    rest data parallel. Axes other than data/fsdp default to 1. ValueError if impossible."""
    fixed = {n: s for n, s in axes.items() if s != -1}
    known = math.prod(fixed.values())
    if facts.device_count % known:
        raise ValueError(_indivisible(axes, known, facts.device_count))
    free = facts.device_count // known
    out = {n: (s if s != -1 else 1) for n, s in axes.items()}
    can_fsdp = axes.get("fsdp") == -1 and "fsdp" in facts.used_axes
    can_data = axes.get("data") == -1
    sharded_by = math.prod(fixed.get(a, 1) for a in ("fsdp", "tensor"))
    needed = math.ceil(facts.train_bytes / sharded_by
                       / (STATE_MEMORY_FRACTION * facts.device_memory_bytes))
    if can_fsdp and (needed > 1 or not can_data):
        divisors = [d for d in range(1, free + 1) if free % d == 0]
        fitting = [d for d in divisors if d >= needed] or [free]
        in_host = [d for d in fitting if facts.devices_per_host % d == 0]
        out["fsdp"] = (in_host or fitting)[0] if can_data else free
        free //= out["fsdp"]
    if can_data:
        out["data"], free = free, 1
    if free > 1:
        takers = [n for n, s in axes.items() if s == -1 and n in facts.used_axes and out[n] == 1]
        if not takers:
            raise ValueError(f"mesh=auto: {free} devices are left for axes {dict(axes)} and no -1 "
                             "axis that a sharding rule uses can take them; set the sizes")
        out[takers[0]] = free
    return {n: out[n] for n in axes}


def host_split(axes: dict[str, int], process_count: int) -> tuple[dict[str, int], dict[str, int]]:
    """(per-host sizes, across-host sizes): hosts are taken by the outermost axes first."""
    across, left = {}, process_count
    for name, size in axes.items():
        across[name] = math.gcd(size, left)
        left //= across[name]
    if left != 1:
        raise ValueError(f"mesh.axes {dict(axes)} cannot be split over {process_count} hosts")
    return {n: axes[n] // across[n] for n in axes}, across


def make_mesh(axes: dict[str, int], devices: list | None = None) -> Mesh:
    """A mesh with every axis in Auto mode (sharding by propagation)."""
    from jax.experimental import mesh_utils

    devices = list(devices) if devices is not None else jax.devices()
    shape = tuple(axes.values())
    on_tpu = devices[0].platform == "tpu"
    # The granules a job spans over slower links: TPU slices (the hosts of one slice share the
    # ICI torus; only multi-slice devices have a slice_index), elsewhere processes.
    granules = len({getattr(d, "slice_index", 0) if on_tpu else d.process_index for d in devices})
    if granules > 1:
        per_granule, across = host_split(axes, granules)
        device_array = mesh_utils.create_hybrid_device_mesh(
            tuple(per_granule.values()), tuple(across.values()), devices,
            allow_split_physical_axes=True, process_is_granule=not on_tpu)
    elif on_tpu:  # one slice: axes laid out on the torus
        device_array = mesh_utils.create_device_mesh(shape, devices, allow_split_physical_axes=True)
    else:
        device_array = np.asarray(devices).reshape(shape)
    return Mesh(device_array, tuple(axes), axis_types=(AxisType.Auto,) * len(axes))


def batch_sharding(mesh: Mesh, rules: ShardingConfig) -> NamedSharding:
    return NamedSharding(mesh, batch_spec(rules))
