"""No position encoding (NoPE): causal attention alone carries order."""


import jax
from flax import nnx

from hydralearn.layers.position.none_config import NoPositionConfig


class NoPosition(nnx.Module):
    def __init__(self, config: NoPositionConfig, *, head_dim: int, rope_theta: float):
        self.config = config

    def __call__(self, x: jax.Array, positions: jax.Array) -> jax.Array:
        return x
