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

# Logical axes of `KVCache.k` and `.v`: the sharding rules place them like the model. Heads
# before length: each (row, head) attends over one contiguous (length, head_dim) matrix.
CACHE_AXES = ("layers", "batch", "kv_heads", "length", "head_dim")


class Step(enum.Enum):
    """How attention reads the cache in one call of `extend`."""

    prefill = "prefill"  # the prompt: causal attention among its own tokens (configured kernel)
    decode = "decode"  # new tokens: attention over every cached slot up to their positions


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KVCache:
    k: jax.Array  # (L, B, K, S, D)
    v: jax.Array  # (L, B, K, S, D)

    @classmethod
    def zeros(cls, *, num_layers: int, batch: int, length: int, num_kv_heads: int,
              head_dim: int, dtype: str) -> "KVCache":
        shape = (num_layers, batch, num_kv_heads, length, head_dim)
        return cls(k=jnp.zeros(shape, dtype), v=jnp.zeros(shape, dtype))

    @property
    def length(self) -> int:
        return self.k.shape[3]

    def write(self, layer: jax.Array, k: jax.Array, v: jax.Array, positions: jax.Array) -> "KVCache":
        """k, v: (B, T, K, D) stored at slots `positions` (B, T) of `layer`."""
        rows = jnp.arange(k.shape[0])[:, None]  # (B, 1)
        # Index arrays around a slice: the indexed view is (B, T, K, D), like k and v.
        return KVCache(k=self.k.at[layer, rows, :, positions].set(k.astype(self.k.dtype)),
                       v=self.v.at[layer, rows, :, positions].set(v.astype(self.v.dtype)))

    def attend(self, layer: jax.Array, q: jax.Array, positions: jax.Array) -> jax.Array:
        """q: (B, T, N, D) at `positions` (B, T) -> context (B, T, N, D) over slots <= position.

        Softmax attention written out: grouped heads as a (K, N / K) split of q, logits in
        float32; faster on CPU than jax.nn.dot_product_attention's layout for one token."""
        batch, length, heads, head_dim = q.shape
        kv_heads = self.k.shape[2]
        q = q.reshape(batch, length, kv_heads, heads // kv_heads, head_dim)  # (B, T, K, G, D)
        logits = jnp.einsum("btkgd,bksd->bkgts", q, self.k[layer].astype(q.dtype),
                            preferred_element_type=jnp.float32) / jnp.sqrt(head_dim)
        visible = jnp.arange(self.length)[None, None, :] <= positions[:, :, None]  # (B, T, S)
        logits = jnp.where(visible[:, None, None], logits, -jnp.inf)
        weights = jax.nn.softmax(logits, axis=-1).astype(q.dtype)  # (B, K, G, T, S)
        context = jnp.einsum("bkgts,bksd->btkgd", weights, self.v[layer].astype(q.dtype))
        return context.reshape(batch, length, heads, head_dim)
