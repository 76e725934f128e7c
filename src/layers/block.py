"""Pre-norm transformer block: x + attn(norm(x)), then x + ffn(norm(x))."""

import dataclasses
from typing import Any

import jax
from flax import nnx

from hydralearn.layers.attention import AttentionFn
from hydralearn.layers.attention.gqa_config import AttentionConfig
from hydralearn.layers.kv_cache import KVCache, Step
from hydralearn.layers.params import Numerics
from hydralearn.layers.registry import instantiate


@dataclasses.dataclass(frozen=True, kw_only=True)
class BlockSpec:
    """What the decoder hands each block: shared dimensions and the children's configs."""

    d_model: int
    ffn_dim: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float
    attention: Any  # a registered attention layer's Config; None: plain (model/attention=gqa)
    position: Any  # a registered position layer's Config
    ffn: Any  # a registered feed-forward layer's Config
    norm: Any  # a registered norm layer's Config
    numerics: Numerics


class TransformerBlock(nnx.Module):
    def __init__(self, spec: BlockSpec, *, attention_fn: AttentionFn, rngs: nnx.Rngs):
        def norm():
            return instantiate(spec.norm, dim=spec.d_model, param_dtype=spec.numerics.param_dtype, rngs=rngs)

        self.attn_norm = norm()
        self.attention = instantiate(
            spec.attention or AttentionConfig(), d_model=spec.d_model, num_heads=spec.num_heads,
            num_kv_heads=spec.num_kv_heads, head_dim=spec.head_dim, attention_fn=attention_fn,
            numerics=spec.numerics, norm=spec.norm, rngs=rngs,
            position=instantiate(spec.position, head_dim=spec.head_dim, rope_theta=spec.rope_theta))
        self.ffn_norm = norm()
        self.ffn = instantiate(spec.ffn, d_model=spec.d_model, ffn_dim=spec.ffn_dim,
                               numerics=spec.numerics, rngs=rngs)

    def __call__(self, x: jax.Array, positions: jax.Array,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """x: (B, T, d_model) -> (x, aux) where aux holds the ffn's auxiliary scalars."""
        x = x + self.attention(self.attn_norm(x), positions, segment_ids)
        y, aux = self.ffn(self.ffn_norm(x))
        return x + y, aux

    def extend(self, x: jax.Array, positions: jax.Array, cache: KVCache, layer: jax.Array,
               step: Step) -> tuple[jax.Array, KVCache]:
        """As __call__ for generation: attention through the cache; the ffn's aux is dropped."""
        h, cache = self.attention.extend(self.attn_norm(x), positions, cache, layer, step)
        x = x + h
        y, _ = self.ffn(self.ffn_norm(x))
        return x + y, cache
