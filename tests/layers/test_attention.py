"""Attention against plain softmax attention written here, and causality of the whole model."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hydralearn.compose.build import model_factory
from hydralearn.layers.attention import Attention
from hydralearn.layers.params import Numerics
from hydralearn.layers.position.none import NoPosition
from hydralearn.layers.position.none_config import NoPositionConfig
from tests.conftest import tiny_config
from tests.reference.attention import reference_attention

XLA = functools.partial(jax.nn.dot_product_attention, is_causal=True, implementation="xla")


def plain_multi_head_attention(x, wq, wk, wv, wo):
    """Vaswani et al. multi-head attention with a causal mask, one head at a time, in numpy."""
    x, wq, wk, wv, wo = (np.asarray(a, np.float64) for a in (x, wq, wk, wv, wo))
    batch, length, _ = x.shape
    out = np.zeros((batch, length, wo.shape[-1]))
    for h in range(wq.shape[1]):
        q, k, v = x @ wq[:, h], x @ wk[:, h], x @ wv[:, h]  # (B, T, D)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
        scores = np.where(np.tril(np.ones((length, length))) > 0, scores, -np.inf)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        out += (weights @ v) @ wo[h]
    return out


def make_attention(num_heads, num_kv_heads, attention_fn=XLA):
    return Attention(d_model=16, num_heads=num_heads, num_kv_heads=num_kv_heads, head_dim=8,
                     position=NoPosition(NoPositionConfig(), head_dim=8, rope_theta=1.0),
                     attention_fn=attention_fn, numerics=Numerics(init_std=0.5), rngs=nnx.Rngs(0))


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
