"""Attention with each query and key head normalised before the position encoding (Qwen3;
QK-norm as in Dehghani et al. 2023, here per head): q_h = norm(x Wq_h), k_h likewise, with
one learned scale over head_dim shared by the heads. The norm is the model's own
(`model/norm`, its eps included), so the option follows the model's choice of norm."""

import jax
from flax import nnx

from hydralearn.layers.attention.gqa import Attention
from hydralearn.layers.attention.qk_norm_config import QKNormConfig
from hydralearn.layers.params import Numerics
from hydralearn.layers.registry import instantiate


class QKNormAttention(Attention):
    def __init__(self, config: QKNormConfig, *, head_dim: int, numerics: Numerics, norm: object,
                 rngs: nnx.Rngs, **rest):
        super().__init__(config, head_dim=head_dim, numerics=numerics, norm=norm, rngs=rngs, **rest)
        p = numerics.param_dtype
        self.q_norm = instantiate(norm, dim=head_dim, param_dtype=p, axis="head_dim", rngs=rngs)
        self.k_norm = instantiate(norm, dim=head_dim, param_dtype=p, axis="head_dim", rngs=rngs)

    def project_heads(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        q, k, v = super().project_heads(x)  # normalised over the last axis, head_dim
        return self.q_norm(q), self.k_norm(k), v
