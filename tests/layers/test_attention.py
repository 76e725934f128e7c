"""Attention against plain softmax attention written here, and causality of the whole model."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hydralearn.compose.build import model_factory
from hydralearn.layers.attention.gqa import Attention
from hydralearn.layers.attention.gqa_config import AttentionConfig
from hydralearn.layers.attention.qk_norm import QKNormAttention
from hydralearn.layers.attention.qk_norm_config import QKNormConfig
from hydralearn.layers.attention.qkv_bias import QKVBiasAttention
from hydralearn.layers.attention.qkv_bias_config import QKVBiasConfig
from hydralearn.layers.norm_config import RMSNormConfig
from hydralearn.layers.params import Numerics
from hydralearn.layers.position.none import NoPosition
from hydralearn.layers.position.none_config import NoPositionConfig
from tests.conftest import tiny_config
from tests.reference.attention import reference_attention

XLA = functools.partial(jax.nn.dot_product_attention, is_causal=True, implementation="xla")


def plain_multi_head_attention(x, wq, wk, wv, wo, *, bias=None, qk_norm=None):
    """Vaswani et al. multi-head attention with a causal mask, one head at a time, in numpy;
    `bias`: (bq, bk, bv) added to each head's projections (Qwen2); `qk_norm`: (eps, q scale,
    k scale) of an RMSNorm over each head's q and k (Qwen3)."""
    x, wq, wk, wv, wo = (np.asarray(a, np.float64) for a in (x, wq, wk, wv, wo))
    batch, length, _ = x.shape
    out = np.zeros((batch, length, wo.shape[-1]))

    def rms(y, eps, scale):
        return y / np.sqrt(np.mean(y * y, axis=-1, keepdims=True) + eps) * np.asarray(scale)

    for h in range(wq.shape[1]):
        q, k, v = x @ wq[:, h], x @ wk[:, h], x @ wv[:, h]  # (B, T, D)
        if bias is not None:  # numpy first: indexing a jax array compiles a gather
            q, k, v = (y + np.asarray(b)[h] for y, b in zip((q, k, v), bias))
        if qk_norm is not None:
            eps, q_scale, k_scale = qk_norm
            q, k = rms(q, eps, q_scale), rms(k, eps, k_scale)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
        scores = np.where(np.tril(np.ones((length, length))) > 0, scores, -np.inf)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        out += (weights @ v) @ wo[h]
    return out


def make_attention(num_heads, num_kv_heads, attention_fn=XLA, cls=Attention, config=AttentionConfig()):
    return cls(config, d_model=16, num_heads=num_heads, num_kv_heads=num_kv_heads, head_dim=8,
               norm=RMSNormConfig(eps=0.1),  # a large eps, so that the qk-norm test sees it
               position=NoPosition(NoPositionConfig(), head_dim=8, rope_theta=1.0),
               attention_fn=attention_fn, numerics=Numerics(init_std=0.5), rngs=nnx.Rngs(0))


def _randomised(attention, *names):
    """Biases start at 0 and norm scales at 1: give them values whose effect shows."""
    rng = np.random.default_rng(10)
    for name in names:
        module, _, attr = name.rpartition(".")
        value = getattr(getattr(attention, module) if module else attention, attr)
        value[...] = jnp.asarray(1.0 + rng.standard_normal(value.shape), jnp.float32)
    return attention


def test_qkv_bias_adds_a_bias_to_each_head_of_q_k_and_v():
    attention = _randomised(make_attention(4, 4, cls=QKVBiasAttention, config=QKVBiasConfig()),
                            "q_bias", "k_bias", "v_bias")
    x = jax.random.normal(jax.random.key(3), (2, 7, 16))
    positions = jnp.broadcast_to(jnp.arange(7), (2, 7))
    a = attention
    expected = plain_multi_head_attention(x, a.q[...], a.k[...], a.v[...], a.o[...],
                                          bias=(a.q_bias[...], a.k_bias[...], a.v_bias[...]))
    np.testing.assert_allclose(attention(x, positions), expected, atol=1e-5)
    assert not np.allclose(expected, plain_multi_head_attention(x, a.q[...], a.k[...], a.v[...], a.o[...]),
                           atol=1e-2)


def test_qk_norm_normalises_each_head_of_q_and_k_with_the_models_norm():
    attention = _randomised(make_attention(4, 4, cls=QKNormAttention, config=QKNormConfig()),
                            "q_norm.scale", "k_norm.scale")
    x = jax.random.normal(jax.random.key(4), (2, 7, 16))
    positions = jnp.broadcast_to(jnp.arange(7), (2, 7))
    a = attention
    assert a.q_norm.scale.get_metadata()["out_sharding"] == ("head_dim",)
    expected = plain_multi_head_attention(x, a.q[...], a.k[...], a.v[...], a.o[...],
                                          qk_norm=(0.1, a.q_norm.scale[...], a.k_norm.scale[...]))
    np.testing.assert_allclose(attention(x, positions), expected, atol=1e-5)


def test_gqa_with_as_many_kv_heads_as_heads_is_plain_multi_head_attention():
    attention = make_attention(4, 4)
    x = jax.random.normal(jax.random.key(1), (2, 7, 16))
    positions = jnp.broadcast_to(jnp.arange(7), (2, 7))
    expected = plain_multi_head_attention(x, attention.q[...], attention.k[...], attention.v[...], attention.o[...])
    np.testing.assert_allclose(attention(x, positions), expected, atol=1e-5)


def test_grouped_kv_heads_are_shared_by_consecutive_query_heads():
    attention = make_attention(4, 2)
    x = jax.random.normal(jax.random.key(2), (2, 5, 16))
    positions = jnp.broadcast_to(jnp.arange(5), (2, 5))
    # Query heads 0,1 read kv head 0; heads 2,3 read kv head 1.
    wk = np.repeat(np.asarray(attention.k[...]), 2, axis=1)
    wv = np.repeat(np.asarray(attention.v[...]), 2, axis=1)
    expected = plain_multi_head_attention(x, attention.q[...], wk, wv, attention.o[...])
    np.testing.assert_allclose(attention(x, positions), expected, atol=1e-5)


@pytest.mark.parametrize("kernel", [XLA, reference_attention])
def test_kernels_match_a_numpy_softmax(kernel):
    q, k, v = (jax.random.normal(jax.random.key(i), (2, 6, 4, 8)) for i in range(3))
    x = np.eye(4 * 8).reshape(32, 4, 8)[None, None]  # identity projections: compare raw attention
    scores = np.einsum("btnd,bsnd->bnts", q, k) / np.sqrt(8)
    scores = np.where(np.tril(np.ones((6, 6))) > 0, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    expected = np.einsum("bnts,bsnd->btnd", weights, v)
    del x
    np.testing.assert_allclose(kernel(q, k, v), expected, atol=1e-5)


def test_future_tokens_cannot_change_past_logits():
    model = model_factory(tiny_config())()
    tokens = jax.random.randint(jax.random.key(0), (2, 12), 0, 256)
    changed = tokens.at[:, 8:].set((tokens[:, 8:] + 1) % 256)
    a, b = model(tokens).logits, model(changed).logits
    np.testing.assert_allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert float(jnp.max(jnp.abs(a[:, 8:] - b[:, 8:]))) > 1e-4  # the change is visible later
