"""Gradient accumulation (`trainer.grad_accum=K`): the global batch is split into K
microbatches that run one after another inside the one jitted step (`lax.scan`), their
gradients summed in float32; the optimizer then makes one update with the mean.

Each cross-entropy is a mean over its microbatch's tokens and every microbatch has the same
number of tokens, so the mean of the K gradients is the gradient of the whole batch, and the
mean of the K losses (and of the auxiliary scalars, MoE's included) is the batch's. Only one
microbatch's activations are alive at a time: activation memory falls about K-fold, at the
cost of a float32 gradient accumulator.
"""

from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec


def microbatch_sharding(batch_sharding: NamedSharding) -> NamedSharding:
    """(K, B/K, ...) microbatches: each split over the devices like the batch it came from."""
    return NamedSharding(batch_sharding.mesh, PartitionSpec(None, *batch_sharding.spec))


def split(x: jax.Array, microbatches: int, sharding: NamedSharding) -> jax.Array:
    """(B, ...) -> (K, B/K, ...). Microbatch i takes rows i, i+K, i+2K, ...: every device's
    contiguous shard of the batch holds an equal part of each microbatch, so nothing moves."""
    rows = x.reshape(x.shape[0] // microbatches, microbatches, *x.shape[1:])  # (B/K, K, ...)
    return jax.lax.with_sharding_constraint(jnp.swapaxes(rows, 0, 1), sharding)


def accumulate(grad_fn: Callable, params, batch: tuple, *, microbatches: int,
               sharding: NamedSharding, param_shardings) -> tuple:
    """(grads, metrics) of `grad_fn(params, *batch)` over the whole batch, computed in
    `microbatches` parts; grads in the parameters' dtype, metrics averaged. Every array of
    `batch` (any pytree of (B, ...) arrays) is split along its first axis."""
    if microbatches == 1:
        return grad_fn(params, *batch)
    parts = jax.tree.map(lambda x: split(x, microbatches, sharding), tuple(batch))
    zeros = jax.lax.with_sharding_constraint(
        jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params), param_shardings)

    def add(total, part):
        grads, metrics = grad_fn(params, *part)
        return jax.tree.map(lambda t, g: t + g.astype(jnp.float32), total, grads), metrics

    total, metrics = jax.lax.scan(add, zeros, parts)
    grads = jax.tree.map(lambda t, p: (t / microbatches).astype(p.dtype), total, params)
    return grads, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)
