"""RoPE with linear position interpolation (Chen et al. 2023): positions divided by `factor`."""


import jax

from hydralearn.layers.position.rope import RoPE


class LinearRoPE(RoPE):
    def inverse_frequencies(self) -> jax.Array:
        return super().inverse_frequencies() / self.config.factor
