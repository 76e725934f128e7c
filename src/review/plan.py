"""A plan: what a config costs on its stated hardware, computed abstractly (no devices needed).

Autos are resolved for `hardware.hosts * hardware.devices_per_host` devices (a CPU profile's
devices_per_host=-1 counts as 1 per host, so plans never depend on the machine they run on);
the model is built with `nnx.eval_shape`, so a 70B model plans in well under a second.
Every number comes from the config and the abstract parameter tree: the hardware profile
gives the device count and memory, the model's parameters give counts and shardings.
"""

import dataclasses
import math
from typing import Any

import jax
import numpy as np
from flax import nnx

from hydralearn.config import compose as compose_config
from hydralearn.compose.build import (abstract_params, flops_per_token, inactive_expert_params,
                                      make_adapter)
from hydralearn.compose.optim import build_optimizer
from hydralearn.compose.peak import measured_cpu_peak
from hydralearn.compose.resolve import resolve
from hydralearn.config.schema import AUTO, TrainConfig
from hydralearn.compose.sharding import logical_to_spec
from hydralearn.review import memory

GIB = 2**30


@dataclasses.dataclass(frozen=True)
class TensorRow:
    """One parameter: its logical axes, its PartitionSpec, and the shard each device holds."""

    path: str
    shape: tuple[int, ...]
    dtype: str
    logical_axes: tuple[str | None, ...]
    spec: str
    shard_shape: tuple[int, ...]
    bytes_per_device: int


@dataclasses.dataclass(frozen=True)
class Plan:
    name: str
    hardware: str
    hosts: int
    device_count: int
    mesh: dict[str, int]
    remat: str
    kernel: str  # the attention kernel auto resolved to
    compute_dtype: str  # what auto resolved to: the profile's preferred dtype
    total_params: int
    active_params: int  # per token: MoE counts only the experts a token is routed to
    trainable_params: int  # with an adapter (model/adapter=lora) only its own; else all
    flops_per_token: float  # training (forward + backward), 6N + attention
    tokens_per_step: int
    grad_accum: int  # microbatches per step (trainer.grad_accum)
    memory: memory.MemoryEstimate  # bytes per device
    device_memory_bytes: int
    step_seconds_at_peak: float  # compute time of one step at 100% MFU
    tensors: tuple[TensorRow, ...]  # largest shard per device first
    warnings: tuple[str, ...]

    def derived(self) -> dict[str, float]:
        """The numbers a diff compares, flat and named."""
        return {"total_params": self.total_params, "active_params": self.active_params,
                "trainable_params": self.trainable_params,
                "flops_per_token": self.flops_per_token, "tokens_per_step": self.tokens_per_step,
                "device_count": self.device_count,
                **{f"memory.{k}_bytes": v for k, v in self.memory.as_dict().items()},
                "step_seconds_at_peak": self.step_seconds_at_peak}


def planned_device_count(config: TrainConfig) -> int:
    per_host = config.hardware.devices_per_host
    return config.hardware.hosts * (per_host if per_host > 0 else 1)


def load_resolved(overrides: list[str], location: compose_config.Location = compose_config.DEFAULT
                  ) -> TrainConfig:
    """Compose, validate and resolve every auto for the stated hardware (ConfigError if not)."""
    config = compose_config.load(overrides, location)
    return resolve(config, device_count=planned_device_count(config))


def peak_flops(config: TrainConfig) -> float:
    """The profile's peak per device; a CPU's `auto` is this machine's measured peak."""
    peak = config.hardware.peak_flops_per_device
    return measured_cpu_peak() / max(config.hardware.devices_per_host, 1) if peak == AUTO else peak


def make_plan(config: TrainConfig, *, params: nnx.State | None = None) -> Plan:
    """The plan of a resolved config; `params`: its abstract parameters if already built
    (compose/resolve.Resolved), else they are built here."""
    if params is None:
        _, params = abstract_params(config)
    mesh = config.mesh.axes
    table = param_table(params, config)
    total = sum(math.prod(row.shape) for row in table)
    # The same rule as the trainer's MFU: routed experts count by the ffn's active share.
    active = total - inactive_expert_params(params, config)
    lookup_only = 0 if config.model.tie_embeddings else config.model.vocab_size * config.model.d_model
    model = config.model
    fpt = flops_per_token(matmul_params=active - lookup_only, num_layers=model.num_layers,
                          attention_dim=model.num_heads * model.resolved_head_dim,
                          seq_len=config.data.seq_len)
    tokens = config.data.batch_size * config.data.seq_len
    param_bytes = sum(row.bytes_per_device for row in table)
    trained, _ = nnx.split_state(params, make_adapter(config).trainable, ...)  # frozen: no grads, no moments
    estimate = memory.estimate(config, mesh=mesh, param_bytes=param_bytes,
                               grad_bytes=sum(r.bytes_per_device for r in param_table(trained, config)),
                               optimizer_bytes=optimizer_bytes(trained, config),
                               ffn_width=_ffn_width(table, config),
                               gathered_step_bytes=_gathered_step_bytes(table, config))
    devices = planned_device_count(config)
    return Plan(
        name=config.name, hardware=config.hardware.name, hosts=config.hardware.hosts,
        device_count=devices, mesh=dict(mesh), remat=config.remat.policy.value,
        kernel=config.kernel.name.value, compute_dtype=config.model.compute_dtype,
        total_params=total, active_params=active,
        trainable_params=sum(math.prod(x.shape) for x in jax.tree.leaves(trained)),
        flops_per_token=fpt, tokens_per_step=tokens, grad_accum=config.trainer.grad_accum,
        memory=estimate, device_memory_bytes=int(config.hardware.device_memory_gib * GIB),
        step_seconds_at_peak=fpt * tokens / (peak_flops(config) * devices),
        tensors=tuple(sorted(table, key=lambda r: (-r.bytes_per_device, r.path))),
        warnings=tuple(_warnings(config, estimate)))


def param_table(params: nnx.State, config: TrainConfig) -> list[TensorRow]:
    """One row per parameter, in path order, sharded on the config's (resolved) mesh."""
    return [_row(".".join(map(str, path)), var, config)
            for path, var in sorted(nnx.to_flat_state(params), key=lambda kv: kv[0])]


def optimizer_bytes(params: nnx.State, config: TrainConfig) -> int:
    """Per-device bytes of the optimizer state: moments shard like their parameters."""
    tx = build_optimizer(config.optim, schedule=config.schedule, total_steps=config.trainer.steps).transform
    state = jax.eval_shape(tx.init, params)
    leaves = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, nnx.Variable))
    return sum(_row("", leaf, config).bytes_per_device for leaf in leaves)


def _row(path: str, leaf: Any, config: TrainConfig) -> TensorRow:
    """A leaf (a Variable with logical axes, or a plain replicated array) on the mesh."""
    value = leaf.get_value() if isinstance(leaf, nnx.Variable) else leaf
    axes = tuple(leaf.get_metadata().get("out_sharding") or ()) if isinstance(leaf, nnx.Variable) else ()
    axes = axes or (None,) * len(value.shape)
    spec = logical_to_spec(axes, config.sharding)
    mesh = config.mesh.axes
    shard = tuple(-(-dim // math.prod(mesh.get(m, 1) for m in _entry_axes(entry)))
                  for dim, entry in zip(value.shape, tuple(spec) + (None,) * len(value.shape)))
    dtype = np.dtype(value.dtype)
    return TensorRow(path=path, shape=tuple(value.shape), dtype=dtype.name, logical_axes=axes,
                     spec=str(spec), shard_shape=shard,
                     bytes_per_device=math.prod(shard) * dtype.itemsize)


def _entry_axes(entry: Any) -> tuple[str, ...]:
    if entry is None:
        return ()
    return (entry,) if isinstance(entry, str) else tuple(entry)


def _inactive_share(row: TensorRow, config: TrainConfig) -> float:
    """Of a routed-expert weight (an `experts` axis), the share one token does not use."""
    share = getattr(config.model.ffn, "active_expert_share", 1.0)
    return 1.0 - share if "experts" in row.logical_axes else 0.0


def _ffn_width(table: list[TensorRow], config: TrainConfig) -> float:
    """Per-token hidden activations of one layer's feed-forward, in elements (unsharded).

    Its weights divided by d_model: 3 * ffn_dim for SwiGLU (gate, up, their product),
    2 * ffn_dim for GELU (up, gelu(up)); MoE counts only the experts a token uses.
    """
    model = config.model
    weights = sum(math.prod(r.shape) * (1 - _inactive_share(r, config))
                  for r in table if ".ffn." in f".{r.path}." and "mlp" in r.logical_axes)
    return weights / max(model.num_layers, 1) / model.d_model


def _gathered_step_bytes(table: list[TensorRow], config: TrainConfig) -> float:
    """One scan step's block weights per device as its matmuls use them: unsharded on the mesh
    axes the batch is split on (FSDP gathers them), except an `experts` dimension (each device
    keeps its experts), in the compute dtype."""
    rules, mesh = config.sharding, config.mesh.axes
    batch_axes = set(rules.mesh_axes("batch"))

    def kept_ways(axis: str | None) -> int:  # how many ways a dimension stays split
        axes = rules.mesh_axes(axis) if axis else ()
        return math.prod(mesh.get(a, 1) for a in axes if axis == "experts" or a not in batch_axes)
    elements = sum(math.prod(dim / kept_ways(axis) for dim, axis in zip(r.shape[1:], r.logical_axes[1:]))
                   for r in table if r.path.split(".")[0] == "blocks")  # [1:]: not the layers axis
    return elements * np.dtype(config.model.compute_dtype).itemsize


def _warnings(config: TrainConfig, estimate: memory.MemoryEstimate) -> list[str]:
    out = []
    capacity = config.hardware.device_memory_gib * GIB
    if estimate.total > capacity:
        out.append(f"estimated {estimate.total / GIB:.1f} GiB per device exceeds the "
                   f"{config.hardware.device_memory_gib:g} GiB of a {config.hardware.name} device")
    shards = estimate.batch_shards
    if config.data.batch_size % shards:
        out.append(f"data.batch_size={config.data.batch_size} is not divisible by the {shards} "
                   "batch shards of the mesh")
    return out
