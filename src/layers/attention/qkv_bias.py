"""Attention with a bias on the query, key and value projections and none on the output
projection (Qwen2, Qwen2.5): q = x Wq + bq, likewise k and v, before the position encoding."""

import jax
from flax import nnx

from hydralearn.layers.attention.gqa import Attention
from hydralearn.layers.attention.qkv_bias_config import QKVBiasConfig
from hydralearn.layers.params import Numerics, constant, use


class QKVBiasAttention(Attention):
    def __init__(self, config: QKVBiasConfig, *, num_heads: int, num_kv_heads: int, head_dim: int,
                 numerics: Numerics, rngs: nnx.Rngs, **rest):
        super().__init__(config, num_heads=num_heads, num_kv_heads=num_kv_heads, head_dim=head_dim,
                         numerics=numerics, rngs=rngs, **rest)
        p = numerics.param_dtype
        self.q_bias = constant(0.0, (num_heads, head_dim), ("heads", "head_dim"), dtype=p)
        self.k_bias = constant(0.0, (num_kv_heads, head_dim), ("kv_heads", "head_dim"), dtype=p)
        self.v_bias = constant(0.0, (num_kv_heads, head_dim), ("kv_heads", "head_dim"), dtype=p)

    def project_heads(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        q, k, v = super().project_heads(x)  # (B, T, heads, D) + (heads, D)
        return (q + use(self.q_bias, self.dtype), k + use(self.k_bias, self.dtype),
                v + use(self.v_bias, self.dtype))
