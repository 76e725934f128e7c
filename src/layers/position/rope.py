"""Rotary position embedding (Su et al. 2021), rotate-half layout as in Llama."""


import jax
import jax.numpy as jnp
from flax import nnx

from hydralearn.layers.position.rope_config import RoPEConfig


class RoPE(nnx.Module):
    """Rotates each (x_i, x_{i+D/2}) pair by angle position * theta^(-2i/D).

    Variants (scaled frequencies) subclass this and override `inverse_frequencies` and, if
    they rescale attention logits (YaRN), `attention_scaling`.
    """

    def __init__(self, config: RoPEConfig, *, head_dim: int, rope_theta: float):
        self.config = config
        self.head_dim = head_dim
        self.rope_theta = rope_theta

    def inverse_frequencies(self) -> jax.Array:
        exponents = jnp.arange(0, self.head_dim, 2, dtype=jnp.float32) / self.head_dim
        return self.rope_theta ** -exponents  # (D/2,)

    def attention_scaling(self) -> float:
        """Factor on cos and sin; q.k logits scale by its square."""
        return 1.0

    def __call__(self, x: jax.Array, positions: jax.Array) -> jax.Array:
        """x: (B, T, H, D); positions: (B, T) integer positions."""
        angles = positions[..., None].astype(jnp.float32) * self.inverse_frequencies()  # (B, T, D/2)
        cos = (jnp.cos(angles) * self.attention_scaling())[:, :, None, :]  # (B, T, 1, D/2)
        sin = (jnp.sin(angles) * self.attention_scaling())[:, :, None, :]
        x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
        rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
        return rotated.astype(x.dtype)
