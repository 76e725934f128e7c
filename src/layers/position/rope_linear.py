"""RoPE with linear position interpolation (Chen et al. 2023): positions divided by `factor`."""

import dataclasses

import jax

from hydralearn.compose.registry import register
from hydralearn.layers.position.rope import RoPE


@register
class LinearRoPE(RoPE):
    @dataclasses.dataclass(kw_only=True, frozen=True)
    class Config:
        factor: float = 4.0  # context extension ratio

        def errors(self) -> list[str]:
            return [] if self.factor > 0 else [f"model.position.factor={self.factor} must be positive"]

    def inverse_frequencies(self) -> jax.Array:
        return super().inverse_frequencies() / self.config.factor
