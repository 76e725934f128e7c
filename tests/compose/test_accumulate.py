"""Gradient accumulation: K microbatches give the un-accumulated step on the same global batch,
activation memory falls about K-fold (XLA's own figures), MoE aux metrics are the microbatches'
mean, and a batch that does not split is refused."""

import jax
import numpy as np
import pytest

from hydralearn.compose.build import build
from hydralearn.data.pipeline import load_corpus, train_batch
from hydralearn.errors import ConfigError
from hydralearn.review.plan import make_plan
from tests.conftest import tiny_config

# Activations dominate this step's memory (the model has ~40k parameters), so accumulation's
# effect on them is visible. SGD's update is linear in the gradient, so equal parameters after
# the step mean equal gradients (Adam's first step, g / (|g| + eps), would amplify the rounding
# of near-zero gradients); a constant lr makes the first update a real one.
SHAPE = ("data.batch_size=32", "data.seq_len=64", "optim=sgd", "schedule=constant",
         "schedule.warmup_steps=0")


@pytest.fixture(scope="module")
def steps(one_device):
    """grad_accum -> the train step compiled ahead of time; both start from one initial state."""
    programs = {k: build(tiny_config(*SHAPE, f"trainer.grad_accum={k}"), devices=one_device) for k in (1, 4)}
    state = jax.device_get(programs[1].init_state())  # the same parameters for both (same seed)
    batch = train_batch(programs[1].config.data, load_corpus(programs[1].config.data), 0)
    compiled = {k: p.train_step.lower(state, batch.inputs, batch.targets).compile() for k, p in programs.items()}
    return compiled, state, batch


def test_four_microbatches_equal_one_batch(steps):
    compiled, state, batch = steps
    # The state is donated: each step gets its own copy.
    (one, metrics_one), (four, metrics_four) = (
        compiled[k](jax.tree.map(np.copy, state), batch.inputs, batch.targets, None) for k in (1, 4))
    for name in ("loss", "grad_norm"):
        np.testing.assert_allclose(float(metrics_four[name]), float(metrics_one[name]), rtol=2e-6)
    for a, b, before in zip(jax.tree.leaves(jax.device_get(four.params)),
                            jax.tree.leaves(jax.device_get(one.params)), jax.tree.leaves(state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
        assert not np.array_equal(a, before)  # the step did update every parameter


def test_activation_memory_falls_about_fourfold(steps):
    temp = {k: c.memory_analysis().temp_size_in_bytes for k, c in steps[0].items()}
    assert temp[4] < temp[1] / 3, temp  # a quarter of the activations, plus the f32 accumulator


def test_plan_accounts_for_microbatches():
    plans = {k: make_plan(tiny_config(*SHAPE, f"trainer.grad_accum={k}")) for k in (1, 4)}
    np.testing.assert_allclose(plans[4].memory.activations, plans[1].memory.activations / 4, rtol=0.01)
    # The float32 accumulator: one more float32 copy of the parameters.
    assert plans[4].memory.grads == 2 * plans[1].memory.grads == 2 * plans[1].memory.params
    assert plans[4].tokens_per_step == plans[1].tokens_per_step == 32 * 64


@pytest.mark.slow
def test_moe_aux_metrics_are_the_microbatches_mean(one_device):
    program = build(tiny_config("model=mixtral_tiny", "trainer.grad_accum=2"), devices=one_device)
    state = program.init_state()
    batch = train_batch(program.config.data, load_corpus(program.config.data), 0)
    _, metrics = program.train_step(program.init_state(), batch.inputs, batch.targets)
    # Microbatch i holds rows i, i + K, i + 2K, ... of the global batch (compose/accumulate.py).
    aux_of = jax.jit(lambda params, tokens: program.apply(params, tokens).aux)
    aux = [{k: float(v) for k, v in aux_of(state.params, batch.inputs[i::2]).items()} for i in range(2)]
    assert {"moe_load_balance_loss", "moe_router_z_loss", "moe_dropped_fraction"} <= aux[0].keys()
    for name in aux[0]:
        np.testing.assert_allclose(float(metrics[name]), np.mean([a[name] for a in aux]), rtol=1e-5)


@pytest.mark.parametrize("overrides, device_count, message", [
    (["trainer.grad_accum=3"], 1, "data.batch_size=8 must be divisible by trainer.grad_accum=3 x the 1 devices"),
    (["trainer.grad_accum=2", "mesh.axes.data=8"], 8, "must be divisible by trainer.grad_accum=2 x the 8 devices"),
])
def test_batch_that_does_not_split_is_refused(overrides, device_count, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(*overrides, device_count=device_count)
