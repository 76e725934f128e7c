"""Normalisation layers: RMSNorm and LayerNorm, each a `model/norm` option.

Every option is built as `cls(config, dim=..., param_dtype=..., rngs=...)` and normalises the
last axis; `axis` names that axis's logical name for sharding (`embed` for the model's
hidden states, `head_dim` where attention normalises each head: model/attention=qk_norm)."""

import jax
import jax.numpy as jnp
from flax import nnx

from hydralearn.layers.norm_config import LayerNormConfig, RMSNormConfig
from hydralearn.layers.params import constant


class RMSNorm(nnx.Module):
    def __init__(self, config: RMSNormConfig, *, dim: int, param_dtype: str, rngs: nnx.Rngs,
                 axis: str = "embed"):
        self.eps = config.eps
        self.scale = constant(1.0, (dim,), (axis,), dtype=param_dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        # Statistics in float32 whatever the compute dtype.
        x32 = x.astype(jnp.float32)
        y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return (y * self.scale[...].astype(jnp.float32)).astype(x.dtype)


class LayerNorm(nnx.Module):
    def __init__(self, config: LayerNormConfig, *, dim: int, param_dtype: str, rngs: nnx.Rngs,
                 axis: str = "embed"):
        self.eps = config.eps
        self.scale = constant(1.0, (dim,), (axis,), dtype=param_dtype)
        self.bias = constant(0.0, (dim,), (axis,), dtype=param_dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        mean = jnp.mean(x32, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + self.eps)
        y = y * self.scale[...].astype(jnp.float32) + self.bias[...].astype(jnp.float32)
        return y.astype(x.dtype)
