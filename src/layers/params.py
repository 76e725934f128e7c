"""What every layer shares: dtypes, initialisation scale, parameters with logical axis names."""

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx


# `shard(x, logical_axes) -> x` pins an activation's layout on the mesh; compose/ makes it
# from conf/sharding's rules (layers only name axes). Without such pins XLA's sharding
# propagation is free to replicate the batch and split the model dimension instead: it did,
# compiled for 8 H100s with FSDP, every device computing the whole batch.
ShardActivation = Callable[[jax.Array, tuple[str | None, ...]], jax.Array]


def unsharded(x: jax.Array, logical_axes: tuple[str | None, ...]) -> jax.Array:
    return x


@dataclasses.dataclass(frozen=True, kw_only=True)
class Numerics:
    """Handed down by the model to every child: how to store, compute and initialise, and
    where activations live (`shard`)."""

    param_dtype: str = "float32"
    compute_dtype: str = "float32"
    init_std: float = 0.02
    # Residual-branch output projections are scaled by 1/sqrt(2 * num_layers) (GPT-2).
    out_std: float = 0.02
    shard: ShardActivation = unsharded


def param(rngs: nnx.Rngs, shape: tuple[int, ...], axes: tuple[str, ...], *,
          std: float, dtype: str) -> nnx.Param:
    """A normal(0, std) parameter whose axes carry logical names (see conf/sharding).

    Not sharded eagerly: layers are single-device maths, compose/build.py places them.
    """
    init = nnx.with_partitioning(nnx.initializers.normal(std), axes, eager_sharding=False)
    return nnx.Param(init(rngs.params(), shape, jnp.dtype(dtype)))


def constant(value: float, shape: tuple[int, ...], axes: tuple[str, ...], *, dtype: str) -> nnx.Param:
    init = nnx.with_partitioning(nnx.initializers.constant(value), axes, eager_sharding=False)
    return nnx.Param(init(jax.random.key(0), shape, jnp.dtype(dtype)))


def use(p: nnx.Param, dtype: str) -> jax.Array:
    """The parameter's value cast to the compute dtype."""
    return p[...].astype(dtype)
