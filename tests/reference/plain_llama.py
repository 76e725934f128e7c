"""A Llama written in plain JAX, independent of hydralearn: the reference for numerics tests and
the baseline for the framework-overhead benchmark (scripts/bench_overhead.py).

Parameters are a dict of arrays with the layers stacked on the leading axis.
"""

import jax
import jax.numpy as jnp


def from_hydralearn(params) -> dict:
    """Copy a hydralearn Decoder's parameters (nnx.State) into this module's plain layout."""
    b = params["blocks"]
    head = params["head"][...] if "head" in params else params["embed"]["table"][...].T
    return {
        "embed": params["embed"]["table"][...], "head": head,
        "final_norm": params["final_norm"]["scale"][...],
        "attn_norm": b["attn_norm"]["scale"][...], "ffn_norm": b["ffn_norm"]["scale"][...],
        "wq": b["attention"]["q"][...], "wk": b["attention"]["k"][...],
        "wv": b["attention"]["v"][...], "wo": b["attention"]["o"][...],
        "w_gate": b["ffn"]["gate"][...], "w_up": b["ffn"]["up"][...], "w_down": b["ffn"]["down"][...],
    }


def rms_norm(x, scale, eps=1e-5):
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * scale


def rope(x, theta):
    """x: (B, T, H, D); rotate-half layout."""
    d = x.shape[-1]
    freqs = theta ** -(jnp.arange(0, d, 2) / d)
    angles = jnp.arange(x.shape[1])[:, None] * freqs  # (T, D/2)
    cos, sin = jnp.cos(angles)[None, :, None], jnp.sin(angles)[None, :, None]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def forward(params: dict, tokens, *, rope_theta: float = 10000.0):
    """tokens (B, T) -> logits (B, T, V)."""
    x = params["embed"][tokens]

    def layer(x, p):
        h = rms_norm(x, p["attn_norm"])
        q = rope(jnp.einsum("btd,dnh->btnh", h, p["wq"]), rope_theta)
        k = rope(jnp.einsum("btd,dkh->btkh", h, p["wk"]), rope_theta)
        v = jnp.einsum("btd,dkh->btkh", h, p["wv"])
        context = jax.nn.dot_product_attention(q, k, v, is_causal=True)
        x = x + jnp.einsum("btnh,nhd->btd", context, p["wo"])
        h = rms_norm(x, p["ffn_norm"])
        x = x + (jax.nn.silu(h @ p["w_gate"]) * (h @ p["w_up"])) @ p["w_down"]
        return x, None

    stacked = {k: params[k] for k in ("attn_norm", "ffn_norm", "wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")}
    x, _ = jax.lax.scan(layer, x, stacked)
    return rms_norm(x, params["final_norm"]) @ params["head"]


def loss(params: dict, inputs, targets, *, rope_theta: float = 10000.0):
    logits = forward(params, inputs, rope_theta=rope_theta)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_probs, targets[..., None], axis=-1))
