"""Keys and values of the tokens seen so far, for generation one token at a time.

Slot s of a row holds the token at position s of that row (positions count from 0 in every
row), so prompts of different lengths need no padding on the left: a row's padding sits past
its end and is overwritten by its own next tokens before any query can see it (a query at
position p sees slots 0..p). Only the kv heads are stored (grouped-query attention).
"""

import dataclasses
import enum

import jax
import jax.numpy as jnp

# Logical axes of `KVCache.k` and `.v`: the sharding rules place them like the model.
CACHE_AXES = ("layers", "batch", "length", "kv_heads", "head_dim")


class Step(enum.Enum):
    """How attention reads the cache in one call of `extend`."""

    prefill = "prefill"  # the prompt: causal attention among its own tokens (configured kernel)
    decode = "decode"  # new tokens: attention over every cached slot up to their positions


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KVCache:
    k: jax.Array  # (L, B, S, K, D)
    v: jax.Array  # (L, B, S, K, D)

    @classmethod
    def zeros(cls, *, num_layers: int, batch: int, length: int, num_kv_heads: int,
              head_dim: int, dtype: str) -> "KVCache":
        shape = (num_layers, batch, length, num_kv_heads, head_dim)
        return cls(k=jnp.zeros(shape, dtype), v=jnp.zeros(shape, dtype))

    @property
    def length(self) -> int:
        return self.k.shape[2]

    def write(self, layer: jax.Array, k: jax.Array, v: jax.Array, positions: jax.Array) -> "KVCache":
        """k, v: (B, T, K, D) stored at slots `positions` (B, T) of `layer`."""
        rows = jnp.arange(k.shape[0])[:, None]  # (B, 1)
        return KVCache(k=self.k.at[layer, rows, positions].set(k.astype(self.k.dtype)),
                       v=self.v.at[layer, rows, positions].set(v.astype(self.v.dtype)))

    def attend(self, layer: jax.Array, q: jax.Array, positions: jax.Array) -> jax.Array:
        """q: (B, T, N, D) at `positions` (B, T) -> context (B, T, N, D) over slots <= position."""
        visible = jnp.arange(self.length)[None, None, :] <= positions[:, :, None]  # (B, T, S)
        return jax.nn.dot_product_attention(q, self.k[layer].astype(q.dtype),
                                            self.v[layer].astype(q.dtype),
                                            mask=visible[:, None], implementation="xla")
