"""An attention kernel independent of hydralearn's, to check the kernels against."""

import jax
import jax.numpy as jnp


def reference_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
    """Causal softmax attention written out in full; GQA by repeating k/v heads."""
    groups = q.shape[2] // k.shape[2]
    k = jnp.repeat(k, groups, axis=2)  # (B, S, N, D)
    v = jnp.repeat(v, groups, axis=2)
    scores = jnp.einsum("btnd,bsnd->bnts", q, k).astype(jnp.float32) / jnp.sqrt(q.shape[-1])
    t, s = q.shape[1], k.shape[1]
    causal = jnp.tril(jnp.ones((t, s), dtype=bool))
    scores = jnp.where(causal, scores, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    return jnp.einsum("bnts,bsnd->btnd", weights, v)
