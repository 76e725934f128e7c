"""SwiGLU feed-forward (Shazeer 2020): down(silu(x W_gate) * (x W_up))."""

import jax
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from hydralearn.layers.checkpoint_names import FFN_IN, FFN_OUT
from hydralearn.layers.ffn.swiglu_config import SwiGLUConfig
from hydralearn.layers.params import Numerics, param, use


class SwiGLU(nnx.Module):
    def __init__(self, config: SwiGLUConfig, *, d_model: int, ffn_dim: int, numerics: Numerics,
                 rngs: nnx.Rngs):
        self.dtype = numerics.compute_dtype
        p = numerics.param_dtype
        self.gate = param(rngs, (d_model, ffn_dim), ("embed", "mlp"), std=numerics.init_std, dtype=p)
        self.up = param(rngs, (d_model, ffn_dim), ("embed", "mlp"), std=numerics.init_std, dtype=p)
        self.down = param(rngs, (ffn_dim, d_model), ("mlp", "embed"), std=numerics.out_std, dtype=p)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, dict]:
        """x: (B, T, d_model) -> ((B, T, d_model), no auxiliary outputs)."""
        gate = checkpoint_name(x @ use(self.gate, self.dtype), FFN_IN)
        up = checkpoint_name(x @ use(self.up, self.dtype), FFN_IN)
        return checkpoint_name((jax.nn.silu(gate) * up) @ use(self.down, self.dtype), FFN_OUT), {}
