"""RoPE variants: frequencies and attention scaling against transformers' own RoPE
initialisers (an independent implementation), and the rotation against complex numbers."""

import numpy as np
import pytest
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from tests.conftest import tiny_config
from hydralearn.errors import ConfigError
from hydralearn.layers.position.rope import RoPE
from hydralearn.layers.position.rope_linear import LinearRoPE
from hydralearn.layers.position.rope_llama3 import Llama3RoPE
from hydralearn.layers.position.yarn import YaRN
from hydralearn.layers.position.rope_config import RoPEConfig
from hydralearn.layers.position.rope_linear_config import LinearRoPEConfig
from hydralearn.layers.position.rope_llama3_config import Llama3RoPEConfig
from hydralearn.layers.position.yarn_config import YaRNConfig

HEAD_DIM, THETA = 64, 500000.0

# hydralearn layer, its config, and the same setting in transformers' spelling
CASES = {
    "linear": (LinearRoPE, LinearRoPEConfig(factor=4.0), {"factor": 4.0}),
    "llama3": (Llama3RoPE, Llama3RoPEConfig(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                             original_max_position=8192),
               {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192}),
    "yarn": (YaRN, YaRNConfig(factor=16.0, original_max_position=4096, beta_fast=32.0, beta_slow=1.0),
             {"factor": 16.0, "original_max_position_embeddings": 4096, "beta_fast": 32.0,
              "beta_slow": 1.0}),
}


def transformers_rope(kind: str, params: dict):
    config = LlamaConfig(hidden_size=HEAD_DIM * 4, num_attention_heads=4, max_position_embeddings=131072,
                         rope_parameters={"rope_type": kind, "rope_theta": THETA, **params})
    inv_freq, scaling = ROPE_INIT_FUNCTIONS[kind](config, "cpu")
    return inv_freq.numpy(), scaling


@pytest.mark.parametrize("kind", CASES)
def test_frequencies_match_transformers(kind):
    cls, config, hf_params = CASES[kind]
    layer = cls(config, head_dim=HEAD_DIM, rope_theta=THETA)
    want_freq, want_scaling = transformers_rope(kind, hf_params)
    np.testing.assert_allclose(np.asarray(layer.inverse_frequencies()), want_freq, rtol=1e-6)
    assert layer.attention_scaling() == pytest.approx(want_scaling)
    plain = np.asarray(RoPE(RoPEConfig(), head_dim=HEAD_DIM, rope_theta=THETA).inverse_frequencies())
    assert not np.allclose(want_freq, plain)  # the variant really changes something


@pytest.mark.parametrize("kind", CASES)
def test_rotation_is_complex_multiplication(kind):
    """Rotate-half RoPE: (x_i + i x_{i+D/2}) * scale * exp(i * position * inv_freq_i)."""
    cls, config, _ = CASES[kind]
    layer = cls(config, head_dim=8, rope_theta=100.0)
    x = np.random.default_rng(0).normal(size=(1, 5, 2, 8)).astype(np.float32)
    positions = np.arange(5)[None] * 37
    got = np.asarray(layer(x, positions))
    z = x[..., :4] + 1j * x[..., 4:]
    angles = positions[0][:, None] * np.asarray(layer.inverse_frequencies(), np.float64)
    rotated = z * layer.attention_scaling() * np.exp(1j * angles)[None, :, None, :]
    np.testing.assert_allclose(got, np.concatenate([rotated.real, rotated.imag], -1), atol=1e-4)


def test_bad_variant_values_are_refused():
    with pytest.raises(ConfigError) as e:
        tiny_config("model/position=rope_llama3", "model.position.high_freq_factor=0.5",
                    "model.position.factor=-1")
    assert "model.position.high_freq_factor=0.5 must exceed" in str(e.value)
    assert "model.position.factor=-1.0 must be positive" in str(e.value)
    with pytest.raises(ConfigError, match="model.position.factor=0.5 must be >= 1"):
        tiny_config("model/position=yarn", "model.position.factor=0.5")
    with pytest.raises(ConfigError, match="did you mean 'model.position.factor'"):
        tiny_config("model/position=rope_linear", "model.position.fator=2")
