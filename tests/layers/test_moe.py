"""MoE feed-forward against a reference written here with plain numpy loops over tokens."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
import optax

from tests.conftest import tiny_config
from hydralearn.compose.build import build
from hydralearn.layers.loss import cross_entropy
from hydralearn.layers.ffn.moe import Dispatch, MoE, TopKWeights
from hydralearn.layers.params import Numerics
from hydralearn.layers.ffn.moe_config import MoEConfig

D, F, E = 8, 12, 4


def make(**overrides) -> MoE:
    config = dataclasses.replace(MoEConfig(num_experts=E, top_k=2), **overrides)
    with nnx.use_eager_sharding(False):
        return MoE(config, d_model=D, ffn_dim=F, numerics=Numerics(init_std=0.5, out_std=0.5),
                   rngs=nnx.Rngs(params=0))


def reference(moe: MoE, x: np.ndarray, *, capacity: int | None = None):
    """Token-by-token top-k routing; with `capacity`, GShard priority (all first choices in
    token order, then second choices) per sequence. Returns (y, dropped share)."""
    c = moe.config
    router, gate, up, down = (np.asarray(p[...], np.float64) for p in (moe.router, moe.gate, moe.up, moe.down))
    batch, length, _ = x.shape
    y, dropped = np.zeros_like(x, dtype=np.float64), 0
    for b in range(batch):
        logits = x[b] @ router
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        choices = np.argsort(-probs, axis=-1, kind="stable")[:, : c.top_k]  # (T, k)
        used = np.zeros(E, int)
        for j in range(c.top_k):
            for t in range(length):
                e = choices[t, j]
                if capacity is not None and used[e] >= capacity:
                    dropped += 1
                    continue
                used[e] += 1
                w = probs[t, choices[t]]
                w = w / w.sum() if c.top_k_weights is TopKWeights.renormalized else w
                h = x[b, t] @ gate[e]
                y[b, t] += w[j] * ((h / (1 + np.exp(-h)) * (x[b, t] @ up[e])) @ down[e])
    return y, dropped / (batch * length * c.top_k)


X = np.random.default_rng(0).normal(size=(2, 10, D)).astype(np.float32)


@pytest.mark.parametrize("weights", list(TopKWeights))
def test_dropless_matches_reference(weights):
    moe = make(dispatch=Dispatch.dropless, top_k_weights=weights)
    y, aux = moe(jnp.asarray(X))
    want, _ = reference(moe, X)
    np.testing.assert_allclose(np.asarray(y), want, atol=1e-5)
    assert float(aux["moe_dropped_fraction"]) == 0.0


def test_capacity_drops_like_gshard():
    moe = make(capacity_factor=0.5)  # C = ceil(0.5 * 10 * 2 / 4) = 3 slots per expert
    y, aux = moe(jnp.asarray(X))
    want, dropped = reference(moe, X, capacity=3)
    assert dropped > 0  # the case exercises dropping
    np.testing.assert_allclose(np.asarray(y), want, atol=1e-5)
    np.testing.assert_allclose(float(aux["moe_dropped_fraction"]), dropped, rtol=1e-6)


def test_large_capacity_is_dropless():
    moe = make(capacity_factor=E / 2)
    y, aux = moe(jnp.asarray(X))
    np.testing.assert_allclose(np.asarray(y), reference(moe, X)[0], atol=1e-5)
    assert float(aux["moe_dropped_fraction"]) == 0.0


def test_aux_losses_follow_switch_and_st_moe():
    moe = make(load_balance_weight=0.5, router_z_weight=0.25)
    _, aux = moe(jnp.asarray(X))
    logits = X.reshape(-1, D).astype(np.float64) @ np.asarray(moe.router[...], np.float64)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    top = np.argsort(-probs, axis=-1)[:, :2]
    f = np.bincount(top.reshape(-1), minlength=E) / top.size  # share of assignments
    np.testing.assert_allclose(float(aux["moe_load_balance_loss"]), 0.5 * E * np.sum(f * probs.mean(0)), rtol=1e-5)
    z = np.mean(np.log(np.exp(logits).sum(-1)) ** 2)
    np.testing.assert_allclose(float(aux["moe_router_z_loss"]), 0.25 * z, rtol=1e-5)


def test_shared_expert_adds_a_dense_swiglu():
    with_shared = make(shared_expert_dim=6, dispatch=Dispatch.dropless)
    y, _ = with_shared(jnp.asarray(X))
    s = with_shared.shared
    h = X @ np.asarray(s.gate[...])
    dense = (h / (1 + np.exp(-h)) * (X @ np.asarray(s.up[...]))) @ np.asarray(s.down[...])
    np.testing.assert_allclose(np.asarray(y), reference(with_shared, X)[0] + dense, atol=1e-5)


def test_expert_weights_carry_the_experts_axis():
    moe = make()
    assert nnx.get_partition_spec(nnx.state(moe, nnx.Param))["gate"].get_value()[0] == "experts"


@pytest.fixture(scope="module")
def moe_every_2(one_device):
    return build(tiny_config("model/ffn=moe", "model.ffn.every=2", "model.num_layers=4",
                             "model.ffn.load_balance_weight=100.0", "trainer.steps=5"), devices=one_device)


@pytest.mark.slow
def test_every_nth_layer_scans_groups_and_reaches_the_objective(moe_every_2):
    program = moe_every_2
    state = program.init_state()
    group = state.params["blocks"]["blocks"]
    assert group[0]["ffn"]["gate"].shape == (2, 32, 64)  # 2 scan steps; dense first
    assert group[1]["ffn"]["gate"].shape == (2, 8, 32, 64)  # then MoE with 8 experts
    tokens = jnp.asarray(np.random.default_rng(1).integers(0, 256, (8, 16)), jnp.int32)
    out = program.apply(state.params, tokens)
    assert set(out.aux) == {"moe_load_balance_loss", "moe_router_z_loss", "moe_dropped_fraction"}
    assert 0.0 <= float(out.aux["moe_dropped_fraction"]) < 1.0  # averaged, not summed
    _, metrics = program.train_step(state, tokens, tokens)
    # Two MoE layers, each ~1.0 x weight 100 when near balance: summed over layers.
    assert 150 < float(metrics["moe_load_balance_loss"]) < 500


@pytest.mark.slow
def test_aux_loss_reaches_the_gradient(moe_every_2):
    """With a heavy load-balance weight the step's gradient is far larger than that of the
    cross-entropy alone: the `_loss` aux entry is part of the objective."""
    program = moe_every_2
    state = program.init_state()
    tokens = jnp.asarray(np.random.default_rng(1).integers(0, 256, (8, 16)), jnp.int32)
    ce_grads = jax.jit(jax.grad(lambda p: cross_entropy(program.apply(p, tokens).logits, tokens)))(state.params)
    ce_norm = float(optax.tree.norm(ce_grads))
    assert float(program.train_step(state, tokens, tokens)[1]["grad_norm"]) > 2 * ce_norm


def test_bad_moe_values_are_refused():
    from hydralearn.errors import ConfigError
    with pytest.raises(ConfigError) as e:
        tiny_config("model/ffn=moe", "model.ffn.top_k=9", "model.ffn.every=3")
    text = str(e.value)
    assert "model.ffn.top_k=9" in text and "model.num_layers=2 must be a multiple" in text
    with pytest.raises(ConfigError, match="model.ffn.dispatch='sparse' is not valid"):
        tiny_config("model/ffn=moe", "model.ffn.dispatch=sparse")


@pytest.mark.slow
def test_expert_mesh_axis_shards_the_experts():
    """8 simulated devices, mesh expert=2 x fsdp=4: expert weights split along `expert`, and
    the sharded step computes the same loss as the unsharded model."""
    config = tiny_config("model/ffn=moe", "mesh.axes.expert=2", "trainer.steps=5", device_count=8)
    program = build(config, devices=jax.devices())
    state = program.init_state()
    gate = state.params["blocks"]["ffn"]["gate"]
    assert gate.sharding.spec[1] == "expert"  # (layers, experts, embed, mlp)
    assert gate.addressable_shards[0].data.shape[1] == 8 // 2
    tokens = jnp.asarray(np.random.default_rng(2).integers(0, 256, (8, 16)), jnp.int32)
    unsharded = cross_entropy(program.apply(jax.device_get(state.params), tokens).logits, tokens)
    _, metrics = program.train_step(state, tokens, tokens)
    np.testing.assert_allclose(float(metrics["loss"]), float(unsharded), rtol=1e-5)
