"""Grouped-query self-attention (Ainslie et al. 2023); multi-head when num_kv_heads == num_heads.
The `model/attention=gqa` option (the default), and the base of the other options.

The attention maths itself is the `attention_fn` handed down at build time (conf/kernel):
`attention_fn(q, k, v) -> context`, causal, with q: (B, T, N, D), k and v: (B, T, K, D); for
packed documents it is also given `segment_ids` (B, T) and attends only within a segment.
"""

import jax
import jax.numpy as jnp
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from hydralearn.layers.attention import AttentionFn
from hydralearn.layers.attention.gqa_config import AttentionConfig
from hydralearn.layers.checkpoint_names import ATTN_CONTEXT, K_PROJ, O_PROJ, Q_PROJ, V_PROJ
from hydralearn.layers.kv_cache import KVCache, Step
from hydralearn.layers.params import Numerics, param, use


class Attention(nnx.Module):
    def __init__(self, config: AttentionConfig, *, d_model: int, num_heads: int, num_kv_heads: int,
                 head_dim: int, position: nnx.Module, attention_fn: AttentionFn, numerics: Numerics,
                 norm: object, rngs: nnx.Rngs):
        del config, norm  # no settings; the model's norm is for the variants that use one
        self.dtype = numerics.compute_dtype
        self.position = position
        self.attention_fn = attention_fn
        p, std = numerics.param_dtype, numerics.init_std
        self.q = param(rngs, (d_model, num_heads, head_dim), ("embed", "heads", "head_dim"), std=std, dtype=p)
        self.k = param(rngs, (d_model, num_kv_heads, head_dim), ("embed", "kv_heads", "head_dim"), std=std, dtype=p)
        self.v = param(rngs, (d_model, num_kv_heads, head_dim), ("embed", "kv_heads", "head_dim"), std=std, dtype=p)
        self.o = param(rngs, (num_heads, head_dim, d_model), ("heads", "head_dim", "embed"),
                       std=numerics.out_std, dtype=p)

    def __call__(self, x: jax.Array, positions: jax.Array,
                 segment_ids: jax.Array | None = None) -> jax.Array:
        """x: (B, T, d_model), positions and segment_ids: (B, T) -> (B, T, d_model)."""
        q, k, v = self._project(x, positions)
        segments = {} if segment_ids is None else {"segment_ids": segment_ids}
        return self._output(self.attention_fn(q, k, v, **segments))

    def extend(self, x: jax.Array, positions: jax.Array, cache: KVCache, layer: jax.Array,
               step: Step) -> tuple[jax.Array, KVCache]:
        """As __call__, with x's keys and values stored in `cache` at `positions` first."""
        q, k, v = self._project(x, positions)
        cache = cache.write(layer, k, v, positions)
        if step is Step.prefill:
            context = self.attention_fn(q, k, v)
        else:
            context = cache.attend(layer, q, positions)
        return self._output(context), cache

    def _project(self, x: jax.Array, positions: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """q: (B, T, N, D); k, v: (B, T, K, D); q and k position-encoded."""
        q, k, v = self.project_heads(x)
        q, k, v = checkpoint_name(q, Q_PROJ), checkpoint_name(k, K_PROJ), checkpoint_name(v, V_PROJ)
        return self.position(q, positions), self.position(k, positions), v

    def project_heads(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """x (B, T, d_model) -> q (B, T, N, D), k and v (B, T, K, D), before the position
        encoding; the variants add to this."""
        q = jnp.einsum("btd,dnh->btnh", x, use(self.q, self.dtype))
        k = jnp.einsum("btd,dkh->btkh", x, use(self.k, self.dtype))
        v = jnp.einsum("btd,dkh->btkh", x, use(self.v, self.dtype))
        return q, k, v

    def _output(self, context: jax.Array) -> jax.Array:
        context = checkpoint_name(context, ATTN_CONTEXT)  # (B, T, N, D)
        return checkpoint_name(jnp.einsum("btnh,nhd->btd", context, use(self.o, self.dtype)), O_PROJ)
