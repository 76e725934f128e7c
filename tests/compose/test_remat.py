"""Remat policies: the same gradients as no remat, less memory, clear errors."""

import functools

import jax
import numpy as np
import pytest

from flax import nnx

from hydralearn.compose.build import abstract_params, build
from hydralearn.compose.remat import block_transform, remat_errors
from hydralearn.config.schema import RematConfig, RematPolicy
from hydralearn.errors import ConfigError
from hydralearn.layers.checkpoint_names import CHECKPOINT_NAMES
from hydralearn.layers.loss import cross_entropy
from tests.conftest import tiny_config

POLICIES = [p.value for p in RematPolicy if p not in (RematPolicy.auto, RematPolicy.none)]


@pytest.fixture(scope="module")
def grads_by_policy():
    """Gradients of one set of parameters under every policy, compiled as one program."""
    reference = build(tiny_config("remat=none"), devices=jax.devices()[:1])
    params = reference.init_state().params
    graphdefs = {p: abstract_params(tiny_config(f"remat={p}"))[0] for p in ["none", *POLICIES]}
    tokens = np.random.default_rng(0).integers(0, 256, size=(4, 17), dtype=np.int32)
    x, y = tokens[:, :-1], tokens[:, 1:]

    def all_grads(params):
        loss = lambda g, p: cross_entropy(nnx.merge(g, p)(x).logits, y)  # noqa: E731
        return {name: jax.grad(functools.partial(loss, g))(params) for name, g in graphdefs.items()}
    return jax.jit(all_grads)(params)


@pytest.mark.slow
@pytest.mark.parametrize("policy", POLICIES)
def test_policy_gives_the_gradients_of_no_remat(policy, grads_by_policy):
    got, want = grads_by_policy[policy], grads_by_policy["none"]
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)


def test_custom_names_are_overridable_entry_by_entry():
    config = tiny_config("remat=custom", "remat.names.ffn_in=offload")
    assert config.remat.names["ffn_in"].value == "offload"
    assert config.remat.names["q_proj"].value == "save"
    assert set(config.remat.names) <= set(CHECKPOINT_NAMES)


def _gradient_temp_bytes(policy: str) -> int:
    # Long enough sequence that stored activations dominate the backward pass's scratch.
    config = tiny_config(f"remat={policy}", "model.d_model=64", "model.ffn_dim=256", "data.seq_len=128")
    graphdef, params = abstract_params(config)
    x = jax.ShapeDtypeStruct((8, 128), np.int32)
    loss = lambda p, x: cross_entropy(nnx.merge(graphdef, p)(x).logits, x)  # noqa: E731
    compiled = jax.jit(jax.grad(loss)).lower(params, x).compile()
    return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.slow
def test_peak_memory_falls_from_none_to_full():
    none, full = _gradient_temp_bytes("none"), _gradient_temp_bytes("full")
    assert full < 0.7 * none, (none, full)


def test_remat_auto_takes_the_hardware_preference_and_a_choice_wins():
    planned = tiny_config("hardware=gpu_h100", "remat=auto", device_count=8)
    assert planned.remat.policy is RematPolicy.save_dots  # gpu_h100's preferred_remat
    chosen = tiny_config("hardware=gpu_h100", "remat=full", device_count=8)
    assert chosen.remat.policy is RematPolicy.full


def test_offload_needs_host_memory():
    errors = remat_errors(RematConfig(policy=RematPolicy.offload_dots), memory_kinds=("device",),
                          host="1 neuron device(s)")
    assert len(errors) == 1 and "memory kind 'pinned_host'" in errors[0]
    assert "remat.policy=offload_dots" in errors[0] and "1 neuron device(s)" in errors[0]
    assert not remat_errors(RematConfig(policy=RematPolicy.save_dots), memory_kinds=("device",), host="")


@pytest.mark.parametrize("overrides, message", [
    (["remat=custom", "+remat.names.attention=save"], "remat.names.attention: unknown checkpoint name"),
    (["remat=full", "+remat.names.q_proj=save"], "remat.names is set but remat.policy=full"),
    (["remat=custom", "remat.names.q_proj=keep"], "remat.names.q_proj='keep' is not valid"),
])
def test_bad_remat_config_is_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(*overrides)


def test_unresolved_auto_is_not_built():
    with pytest.raises(ValueError, match="must be resolved"):
        block_transform(RematConfig(policy=RematPolicy.auto))
