"""Hugging Face import/export checked against transformers itself: small random models are
made and saved with `transformers` on CPU, imported, and their logits compared in float32."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from safetensors.numpy import load_file
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, MixtralConfig, MixtralForCausalLM)

from hydralearn.config import compose as compose_config
from hydralearn.compose.resolve import resolve
from hydralearn.compose.build import abstract_params, build
from hydralearn.layers.registry import layer_class
from hydralearn.errors import ConfigError
from hydralearn.interop import hf

# vocab 256: the default data config's byte tokenizer must fit the model.
SMALL = dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, initializer_range=0.1,
             rms_norm_eps=1e-5)
# Llama 3.1-style scaling squeezed so that it changes the angles within 24 positions.
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 32}

FAMILIES = {
    "llama": lambda: LlamaForCausalLM(LlamaConfig(**SMALL)),
    "llama3_scaled_tied": lambda: LlamaForCausalLM(LlamaConfig(
        **SMALL, tie_word_embeddings=True, rope_theta=10000.0, rope_scaling=LLAMA3_SCALING)),
    "mistral": lambda: MistralForCausalLM(MistralConfig(**SMALL, sliding_window=None, head_dim=24)),
    "mixtral": lambda: MixtralForCausalLM(MixtralConfig(**SMALL, num_local_experts=4,
                                                        num_experts_per_tok=2)),
}
TOKENS = np.random.default_rng(0).integers(0, 256, size=(2, 24))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """family -> (directory saved by transformers, its float32 logits on TOKENS)."""
    out = {}
    for family, make in FAMILIES.items():
        torch.manual_seed(0)
        model = make().eval()
        model.config._attn_implementation = "eager"
        directory = tmp_path_factory.mktemp(family)
        model.save_pretrained(directory)
        with torch.no_grad():
            logits = model(torch.tensor(TOKENS)).logits.numpy()
        out[family] = (directory, logits)
    return out


def hydralearn_logits(config, params) -> np.ndarray:
    graphdef, _ = abstract_params(config)
    return np.asarray(nnx.merge(graphdef, params)(jnp.asarray(TOKENS)).logits)


@pytest.mark.parametrize("family", FAMILIES)
def test_logits_match_transformers(family, checkpoints):
    directory, expected = checkpoints[family]
    loaded = hf.load(directory)
    got = hydralearn_logits(loaded.config, loaded.params)
    diff = float(np.max(np.abs(got - expected)))
    print(f"\n{family}: logits max |hydralearn - transformers| = {diff:.2e} "
          f"(logits max |.| = {np.max(np.abs(expected)):.2f})")
    assert diff < 2e-5


def test_imported_config_picks_the_features(checkpoints):
    llama3 = hf.load(checkpoints["llama3_scaled_tied"][0]).config.model
    assert layer_class(llama3.position).__name__ == "Llama3RoPE"
    assert (llama3.position.factor, llama3.position.original_max_position) == (8.0, 32)
    assert llama3.tie_embeddings
    mixtral = hf.load(checkpoints["mixtral"][0]).config.model
    assert (layer_class(mixtral.ffn).__name__, mixtral.ffn.num_experts, mixtral.ffn.top_k) == ("MoE", 4, 2)
    assert hf.load(checkpoints["mistral"][0]).config.model.resolved_head_dim == 24


def test_scaling_matters(checkpoints):
    """The rope_llama3 comparison can fail: plain RoPE on the same weights differs."""
    directory, expected = checkpoints["llama3_scaled_tied"]
    found = [o for o in hf.overrides(directory) if not o.startswith(("model.position.", "model/position"))]
    config = resolve(compose_config.load([*found, "model/position=rope"]), device_count=1)
    got = hydralearn_logits(config, hf.load_params(directory, config))
    assert np.max(np.abs(got - expected)) > 1e-3


@pytest.mark.parametrize("family", ["llama3_scaled_tied", "mixtral"])
def test_export_round_trips_bit_exactly(family, checkpoints, tmp_path):
    directory, expected = checkpoints[family]
    loaded = hf.load(directory)
    hf.export(loaded.params, loaded.config, tmp_path)
    original, exported = load_file(directory / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    assert sorted(original) == sorted(exported)
    for name in original:
        assert np.array_equal(original[name], exported[name]), name
    again = hf.load(tmp_path)  # and back: identical parameters
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), loaded.params, again.params))
    model = AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    with torch.no_grad():  # transformers reads the exported config.json the same way
        np.testing.assert_array_equal(model(torch.tensor(TOKENS)).logits.numpy(), expected)


def test_wrong_shape_names_the_tensor(checkpoints):
    with pytest.raises(ConfigError, match=r"self_attn.q_proj.weight.*shape"):
        hf.load(checkpoints["llama"][0], "++model.head_dim=8")


def test_unsupported_checkpoint_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ConfigError, match="model_type='gpt2' is not supported"):
        hf.load(tmp_path)


@pytest.mark.slow
def test_training_continues_from_the_imported_weights(checkpoints, one_device):
    """The first training step on imported weights sees transformers' own loss."""
    directory, expected = checkpoints["mixtral"]
    loaded = hf.load(directory, "trainer.steps=3")
    program = build(loaded.config, devices=one_device)
    state = hf.initial_state(program, loaded.params)
    inputs, targets = jnp.asarray(TOKENS[:, :-1]), jnp.asarray(TOKENS[:, 1:])
    state, metrics = program.train_step(state, inputs, targets)
    logits = expected[:, :-1].astype(np.float64)  # causal: the prefix's logits are unchanged
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = -np.mean(np.take_along_axis(log_probs, TOKENS[:, 1:, None], -1))
    np.testing.assert_allclose(float(metrics["loss"]), want, rtol=1e-5)
    assert int(state.step) == 1
