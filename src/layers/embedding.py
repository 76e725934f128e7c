"""Token embedding table; `attend` reuses it as the LM head when embeddings are tied."""

import jax
import jax.numpy as jnp
from flax import nnx

from hydralearn.layers.params import Numerics, param, use


class Embedding(nnx.Module):
    def __init__(self, *, vocab_size: int, d_model: int, numerics: Numerics, rngs: nnx.Rngs):
        self.dtype = numerics.compute_dtype
        self.table = param(rngs, (vocab_size, d_model), ("vocab", "embed"),
                           std=numerics.init_std, dtype=numerics.param_dtype)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """tokens: (B, T) int -> (B, T, d_model)."""
        return jnp.take(use(self.table, self.dtype), tokens, axis=0)

    def attend(self, x: jax.Array) -> jax.Array:
        """x: (B, T, d_model) -> logits (B, T, vocab)."""
        return x @ use(self.table, self.dtype).T
