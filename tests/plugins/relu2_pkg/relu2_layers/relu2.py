"""Squared-ReLU feed-forward (So et al. 2021, Primer): down(scale * relu(x W_up)^2)."""

import jax
from flax import nnx

from hydralearn.layers.params import param, use


class Relu2MLP(nnx.Module):
    """Built as every `model/ffn` option is (hydralearn/layers/ffn/__init__.py)."""

    def __init__(self, config, *, d_model: int, ffn_dim: int, numerics, rngs: nnx.Rngs):
        self.scale, self.dtype = config.scale, numerics.compute_dtype
        p = numerics.param_dtype
        self.up = param(rngs, (d_model, ffn_dim), ("embed", "mlp"), std=numerics.init_std, dtype=p)
        self.down = param(rngs, (ffn_dim, d_model), ("mlp", "embed"), std=numerics.out_std, dtype=p)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, dict]:
        """x: (B, T, d_model) -> ((B, T, d_model), no auxiliary outputs)."""
        hidden = jax.nn.relu(x @ use(self.up, self.dtype))
        return (self.scale * hidden**2) @ use(self.down, self.dtype), {}
