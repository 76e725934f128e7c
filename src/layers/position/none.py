"""No position encoding (NoPE): causal attention alone carries order."""

import dataclasses

import jax
from flax import nnx

from hydralearn.compose.registry import register


@register
class NoPosition(nnx.Module):
    @dataclasses.dataclass(kw_only=True, frozen=True)
    class Config:
        pass

    def __init__(self, config: Config, *, head_dim: int, rope_theta: float):
        self.config = config

    @staticmethod
    def errors(*, head_dim: int) -> list[str]:
        return []

    def __call__(self, x: jax.Array, positions: jax.Array) -> jax.Array:
        return x
