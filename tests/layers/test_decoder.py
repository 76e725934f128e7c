"""The scanned decoder against a Python loop over the same layers; norms, FFNs and loss by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hydralearn.compose.build import model_factory
from hydralearn.layers.ffn.gelu import GeluMLP
from hydralearn.layers.ffn.swiglu import SwiGLU
from hydralearn.layers.loss import cross_entropy
from hydralearn.layers.norm import LayerNorm, RMSNorm
from hydralearn.layers.params import Numerics
from hydralearn.layers.ffn.gelu_config import GeluMLPConfig
from hydralearn.layers.ffn.swiglu_config import SwiGLUConfig
from hydralearn.layers.norm_config import LayerNormConfig
from hydralearn.layers.norm_config import RMSNormConfig
from tests.conftest import tiny_config


@pytest.mark.parametrize("overrides", [(), ("model.tie_embeddings=true", "model/norm=layer")])
def test_scan_equals_python_loop(overrides):
    model = model_factory(tiny_config("model.num_layers=3", *overrides))()
    tokens = jax.random.randint(jax.random.key(0), (2, 10), 0, 256)
    positions = jnp.broadcast_to(jnp.arange(10), (2, 10))
    block_def, stacked = nnx.split(model.blocks)
    x = model.embed(tokens)
    for layer in range(3):
        x, _ = nnx.merge(block_def, jax.tree.map(lambda a: a[layer], stacked))(x, positions)
    x = model.final_norm(x)
    table = model.embed.table[...]
    logits = x @ (table.T if model.head is None else model.head[...])
    np.testing.assert_allclose(model(tokens).logits, logits, atol=1e-5)


def test_rms_and_layer_norm_match_their_formulas():
    x = np.random.default_rng(0).normal(size=(3, 5, 8)).astype(np.float32)
    rms = RMSNorm(RMSNormConfig(eps=1e-6), dim=8, param_dtype="float32", rngs=nnx.Rngs(0))
    np.testing.assert_allclose(rms(x), x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6), atol=1e-5)
    ln = LayerNorm(LayerNormConfig(eps=1e-6), dim=8, param_dtype="float32", rngs=nnx.Rngs(0))
    np.testing.assert_allclose(ln(x), (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6),
                               atol=1e-5)


def test_feed_forwards_match_their_formulas():
    x = np.random.default_rng(1).normal(size=(2, 3, 8)).astype(np.float32)
    numerics = Numerics(init_std=0.3, out_std=0.3)
    swiglu = SwiGLU(SwiGLUConfig(), d_model=8, ffn_dim=12, numerics=numerics, rngs=nnx.Rngs(0))
    gate, up, down = (np.asarray(p[...], np.float64) for p in (swiglu.gate, swiglu.up, swiglu.down))
    silu = lambda z: z / (1 + np.exp(-z))  # noqa: E731
    np.testing.assert_allclose(swiglu(x)[0], (silu(x @ gate) * (x @ up)) @ down, atol=1e-5)
    gelu = GeluMLP(GeluMLPConfig(approximate=False), d_model=8, ffn_dim=12, numerics=numerics, rngs=nnx.Rngs(0))
    from scipy.special import erf  # noqa: PLC0415 - scipy comes with jax
    h = x @ np.asarray(gelu.up[...], np.float64)
    np.testing.assert_allclose(gelu(x)[0], (0.5 * h * (1 + erf(h / np.sqrt(2)))) @ np.asarray(gelu.down[...]),
                               atol=1e-5)


def test_cross_entropy_is_mean_negative_log_softmax():
    logits = np.random.default_rng(2).normal(size=(2, 4, 7))
    targets = np.array([[0, 6, 3, 1], [2, 2, 5, 4]])
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, targets[..., None], -1).mean()
    np.testing.assert_allclose(cross_entropy(jnp.asarray(logits), jnp.asarray(targets)), expected, rtol=1e-5)
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0]])
    masked = -(np.take_along_axis(log_probs, targets[..., None], -1)[..., 0] * mask).sum() / 3
    np.testing.assert_allclose(cross_entropy(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask)),
                               masked, rtol=1e-5)


def test_bfloat16_compute_keeps_float32_params_and_logits():
    model = model_factory(tiny_config("model.compute_dtype=bfloat16"))()
    assert model.embed.table[...].dtype == jnp.float32
    out = model(jnp.zeros((1, 4), jnp.int32))
    assert out.logits.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(out.logits)))


def test_whole_model_matches_a_plain_jax_llama():
    from tests.reference import plain_llama

    config = tiny_config("model.num_layers=3", "model.rope_theta=500.0")
    model = model_factory(config)()
    tokens = jax.random.randint(jax.random.key(4), (2, 16), 0, 256)
    reference = plain_llama.forward(plain_llama.from_hydralearn(nnx.state(model)), tokens, rope_theta=500.0)
    np.testing.assert_allclose(model(tokens).logits, reference, atol=2e-5)
