"""Causal-LM cross-entropy: the one the training step, evaluation and the tests use."""

import jax
import jax.numpy as jnp
import optax


def token_losses(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Next-token cross-entropy of every position in nats, float32. logits: (B, T, V); targets:
    (B, T) -> (B, T)."""
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)


def cross_entropy(logits: jax.Array, targets: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Mean next-token cross-entropy in nats. logits: (B, T, V); targets, mask: (B, T)."""
    losses = token_losses(logits, targets)
    if mask is None:
        return jnp.mean(losses)
    mask = mask.astype(jnp.float32)
    return jnp.sum(losses * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def masked_cross_entropy(logits: jax.Array, targets: jax.Array, count: jax.Array | None = None) -> jax.Array:
    """Cross-entropy summed over the targets >= 0 (a negative target is no target: context or
    padding, whose logits get no gradient), divided by `count` (default: how many there are).
    logits: (B, T, V); targets: (B, T)."""
    mask = targets >= 0
    losses = jnp.where(mask, token_losses(logits, jnp.maximum(targets, 0)), 0.0)
    count = jnp.sum(mask) if count is None else count
    return jnp.sum(losses) / jnp.maximum(count, 1.0)
