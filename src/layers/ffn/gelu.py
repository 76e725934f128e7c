"""GELU feed-forward (GPT-2 / BERT style): down(gelu(x W_in))."""

import jax
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from hydralearn.layers.checkpoint_names import FFN_IN, FFN_OUT
from hydralearn.layers.ffn.gelu_config import GeluMLPConfig
from hydralearn.layers.params import Numerics, param, use


class GeluMLP(nnx.Module):
    def __init__(self, config: GeluMLPConfig, *, d_model: int, ffn_dim: int, numerics: Numerics,
                 rngs: nnx.Rngs):
        self.dtype = numerics.compute_dtype
        self.approximate = config.approximate
        p = numerics.param_dtype
        self.up = param(rngs, (d_model, ffn_dim), ("embed", "mlp"), std=numerics.init_std, dtype=p)
        self.down = param(rngs, (ffn_dim, d_model), ("mlp", "embed"), std=numerics.out_std, dtype=p)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, dict]:
        """x: (B, T, d_model) -> ((B, T, d_model), no auxiliary outputs)."""
        hidden = checkpoint_name(x @ use(self.up, self.dtype), FFN_IN)
        hidden = jax.nn.gelu(hidden, approximate=self.approximate)
        return checkpoint_name(hidden @ use(self.down, self.dtype), FFN_OUT), {}
