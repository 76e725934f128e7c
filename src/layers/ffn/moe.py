"""Mixture-of-experts SwiGLU feed-forward: a learned top-k router over `num_experts` experts.

Router (Shazeer et al. 2017; Switch, Fedus et al. 2021): softmax over experts, the top_k
kept per token and, by default, renormalised to sum to one (Mixtral). Two dispatch modes:

- `capacity` (GShard, Lepikhin et al. 2020): each sequence gives every expert a buffer of
  C = ceil(capacity_factor * T * top_k / E) slots; first choices are placed before second
  choices, in token order, and assignments past C are dropped (their share of the output is
  zero, the residual carries the token). Dense einsums over (B, E, C, d): fast on any backend
  and sharded along the `experts` logical axis (expert-major buffers). capacity_factor >= E / top_k drops nothing.
- `dropless` (MegaBlocks, Gale et al. 2022): assignments sorted by expert and multiplied with
  `jax.lax.ragged_dot`; exact, efficient on GPU/TPU, slow on CPU XLA.

Auxiliary outputs (see ffn/__init__.py): `moe_load_balance_loss` (Switch: E * sum_e f_e P_e,
1.0 when balanced, times its weight), `moe_router_z_loss` (ST-MoE: mean logsumexp(logits)^2,
times its weight) and `moe_dropped_fraction` (share of token-expert assignments dropped).
`every: n` makes only every n-th layer MoE; the others use the `dense` ffn (see Config).
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from hydralearn.layers.checkpoint_names import FFN_IN, FFN_OUT
from hydralearn.layers.ffn.moe_config import Dispatch, MoEConfig, TopKWeights
from hydralearn.layers.ffn.swiglu import SwiGLU
from hydralearn.layers.ffn.swiglu_config import SwiGLUConfig
from hydralearn.layers.params import Numerics, param, use

BUFFER_AXES = ("experts", "batch", None, None)  # (E, B, C, d): experts, sequences, slots, model


class MoE(nnx.Module):
    def __init__(self, config: MoEConfig, *, d_model: int, ffn_dim: int, numerics: Numerics,
                 rngs: nnx.Rngs):
        self.config = config
        self.dtype = numerics.compute_dtype
        self.shard = numerics.shard
        e, f, p = config.num_experts, config.expert_dim or ffn_dim, numerics.param_dtype
        std, out_std = numerics.init_std, numerics.out_std
        # The router is small and every token uses all of it: replicated (no `experts` axis).
        self.router = param(rngs, (d_model, e), ("embed", None), std=std, dtype="float32")
        self.gate = param(rngs, (e, d_model, f), ("experts", "embed", "mlp"), std=std, dtype=p)
        self.up = param(rngs, (e, d_model, f), ("experts", "embed", "mlp"), std=std, dtype=p)
        self.down = param(rngs, (e, f, d_model), ("experts", "mlp", "embed"), std=out_std, dtype=p)
        self.shared = None if not config.shared_expert_dim else SwiGLU(
            SwiGLUConfig(), d_model=d_model, ffn_dim=config.shared_expert_dim, numerics=numerics,
            rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, dict]:
        """x: (B, T, d_model) -> ((B, T, d_model), aux scalars)."""
        c = self.config
        logits = x.astype(jnp.float32) @ self.router[...]  # (B, T, E), router in float32
        probs = jax.nn.softmax(logits, axis=-1)
        weights, experts = jax.lax.top_k(probs, c.top_k)  # (B, T, k)
        if c.top_k_weights is TopKWeights.renormalized:
            weights = weights / jnp.sum(weights, axis=-1, keepdims=True)
        if c.dispatch is Dispatch.capacity:
            y, dropped = self._capacity(x, experts, weights)
        else:
            y, dropped = self._dropless(x, experts, weights), jnp.zeros((), jnp.float32)
        if self.shared is not None:
            y = y + self.shared(x)[0]
        return checkpoint_name(y, FFN_OUT), self._aux(logits, probs, experts, dropped)

    def _experts(self, h: jax.Array) -> jax.Array:
        """SwiGLU of every expert on its own buffers: h (E, B, C, d) -> (E, B, C, d).

        Expert-major, as in GShard: each device keeps its experts' buffers and the sequences
        its batch shard holds, so the sharding rules (not XLA's propagation) place them; with
        the batch also split over the expert axis (sharding=ep), the reshard is an all-to-all."""
        h = self.shard(h, BUFFER_AXES)

        def hidden(w):
            out = jnp.einsum("ebcd,edf->ebcf", h, use(w, self.dtype))
            return checkpoint_name(self.shard(out, ("experts", "batch", None, "mlp")), FFN_IN)
        out = jnp.einsum("ebcf,efd->ebcd", jax.nn.silu(hidden(self.gate)) * hidden(self.up),
                         use(self.down, self.dtype))
        return self.shard(out, BUFFER_AXES)

    def _capacity(self, x, experts, weights):
        """GShard dispatch per sequence into (B, E, C, d) buffers; returns (y, dropped share)."""
        batch, length, d = x.shape
        e, k = self.config.num_experts, self.config.top_k
        capacity = min(length, math.ceil(self.config.capacity_factor * length * k / e))
        # Slot of each assignment in its expert's buffer: first choices first, then token order.
        onehot = jax.nn.one_hot(experts, e, dtype=jnp.int32)  # (B, T, k, E)
        by_choice = onehot.transpose(0, 2, 1, 3).reshape(batch, k * length, e)
        slot = jnp.sum((jnp.cumsum(by_choice, axis=1) - 1) * by_choice, axis=-1)
        slot = slot.reshape(batch, k, length).transpose(0, 2, 1)  # (B, T, k)
        kept = slot < capacity
        # Flat buffer index expert * C + slot; dropped assignments point past the end.
        index = jnp.where(kept, experts * capacity + slot, e * capacity)
        rows = jnp.arange(batch)[:, None, None]
        tokens = jnp.broadcast_to(x[:, :, None, :], (batch, length, k, d))
        buffers = jnp.zeros((batch, e * capacity, d), x.dtype).at[rows, index].set(tokens, mode="drop")
        expert_major = buffers.reshape(batch, e, capacity, d).transpose(1, 0, 2, 3)  # (E, B, C, d)
        out = self._experts(expert_major).transpose(1, 0, 2, 3)
        picked = out.reshape(batch, e * capacity, d).at[rows, index].get(mode="fill", fill_value=0)
        y = jnp.einsum("btkd,btk->btd", picked, (weights * kept).astype(x.dtype))
        return y, 1.0 - jnp.mean(kept.astype(jnp.float32))

    def _dropless(self, x, experts, weights):
        """Every assignment computed: sorted by expert, grouped matmuls (ragged_dot)."""
        batch, length, d = x.shape
        e, k = self.config.num_experts, self.config.top_k
        flat_experts = experts.reshape(-1)  # (B*T*k,)
        order = jnp.argsort(flat_experts, stable=True)
        sizes = jnp.bincount(flat_experts, length=e).astype(jnp.int32)
        h = jnp.repeat(x.reshape(-1, d), k, axis=0)[order]  # (B*T*k, d), grouped by expert

        def grouped(lhs, w):
            return jax.lax.ragged_dot(lhs, use(w, self.dtype), sizes)

        hidden = jax.nn.silu(checkpoint_name(grouped(h, self.gate), FFN_IN)) * \
            checkpoint_name(grouped(h, self.up), FFN_IN)
        out = jnp.zeros_like(h).at[order].set(grouped(hidden, self.down))
        out = out.reshape(batch, length, k, d)
        return jnp.einsum("btkd,btk->btd", out, weights.astype(x.dtype))

    def _aux(self, logits, probs, experts, dropped) -> dict:
        c = self.config
        routed = jnp.mean(jax.nn.one_hot(experts, c.num_experts, dtype=jnp.float32), axis=(0, 1, 2))
        balance = c.num_experts * jnp.sum(routed * jnp.mean(probs, axis=(0, 1)))
        z = jnp.mean(jnp.square(jax.nn.logsumexp(logits, axis=-1)))
        return {"moe_load_balance_loss": c.load_balance_weight * balance,
                "moe_router_z_loss": c.router_z_weight * z,
                "moe_dropped_fraction": dropped}
