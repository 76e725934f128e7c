"""objective=sft: the step's loss on chat batches equals a plain numpy masked cross-entropy,
with and without gradient accumulation (the mean is over the whole batch's targets however
they fall into microbatches), and context targets get no gradient."""

import json
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hydralearn.compose.build import build
from hydralearn.compose.resolve import resolve
from hydralearn.config import compose as compose_config
from hydralearn.data.loader import first_batches
from hydralearn.layers.loss import masked_cross_entropy

SHAPE = ["model.d_model=32", "model.num_layers=2", "model.num_heads=4", "model.num_kv_heads=2",
         "model.ffn_dim=64", "objective=sft", "data=chat", "data.template=chatml", "data.seq_len=96",
         "data.batch_size=8", "optim=sgd", "schedule=constant", "schedule.warmup_steps=0"]


@pytest.fixture(scope="module")
def chats(tmp_path_factory) -> str:
    """Conversations of varied length: rows differ in how many targets they hold."""
    rng, lines = random.Random(0), []
    for _ in range(120):
        turns = [{"role": "user", "content": "q" * rng.randint(1, 30)},
                 {"role": "assistant", "content": "a" * rng.randint(1, 20)}]
        lines.append(json.dumps({"messages": turns}))
    path = tmp_path_factory.mktemp("sft") / "chats.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _program(chats: str, accum: int, devices):
    return build(resolve(compose_config.load([*SHAPE, f"data.paths=[{chats}]", f"trainer.grad_accum={accum}"]),
                         device_count=1), devices=devices)


@pytest.fixture(scope="module")
def program(chats, one_device):
    return _program(chats, 1, one_device)


@pytest.fixture(scope="module")
def batch(program):
    return first_batches(program.config.data, 1)[0]


def _numpy_loss(logits: np.ndarray, targets: np.ndarray) -> float:
    logits = logits.astype(np.float64)
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    mask = targets >= 0
    return float(-np.take_along_axis(log_probs, np.maximum(targets, 0)[..., None], -1)[..., 0][mask].mean())


def _expected(program, batch):
    segments = {"positions": batch.positions, "segment_ids": batch.segment_ids}
    state = jax.device_get(program.init_state())
    logits = nnx.merge(program.graphdef, state.params)(batch.inputs, **segments).logits
    return state, segments, _numpy_loss(np.asarray(logits), batch.targets)


def test_sft_loss_equals_numpy_masked_cross_entropy(program, batch):
    state, segments, expected = _expected(program, batch)
    assert 0 < (batch.targets >= 0).mean() < 0.5  # most of each row is context or padding
    np.testing.assert_allclose(float(program.eval_step(state.params, batch.inputs, batch.targets, segments)),
                               expected, rtol=1e-5)


@pytest.mark.slow
def test_accumulated_sft_step_is_the_batch_mean(program, batch, chats, one_device):
    one, two = program, _program(chats, 2, one_device)
    state, segments, expected = _expected(program, batch)
    # Microbatches take rows 0, 2, 4, ... and 1, 3, 5, ...: their target counts differ, so a mean
    # of the two microbatch means would not be the batch's mean.
    counts = [(batch.targets[k::2] >= 0).sum() for k in range(2)]
    assert counts[0] != counts[1], counts
    (after_one, m1), (after_two, m2) = (p.train_step(jax.tree.map(np.copy, state), batch.inputs,
                                                      batch.targets, segments) for p in (one, two))
    np.testing.assert_allclose(float(m1["loss"]), expected, rtol=1e-5)
    np.testing.assert_allclose(float(m2["loss"]), expected, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(jax.device_get(after_two.params)), jax.tree.leaves(jax.device_get(after_one.params))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_context_targets_get_no_gradient():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(2, 6, 11)), jnp.float32)
    targets = np.array([[-1, 3, 4, -1, -1, 2], [-1, -1, 7, 1, -1, -1]], np.int32)

    def value_and_grad(t):
        return jax.value_and_grad(lambda x: masked_cross_entropy(x, jnp.asarray(t)))(logits)
    loss, grad = value_and_grad(targets)
    assert not np.asarray(grad)[targets < 0].any()  # exactly zero where the target is context
    assert np.abs(np.asarray(grad)[targets >= 0]).sum() > 0
    other = np.where(targets < 0, -7, targets)  # a different "masked target": nothing changes
    loss2, grad2 = value_and_grad(other)
    assert float(loss2) == float(loss) and np.array_equal(np.asarray(grad2), np.asarray(grad))
    changed = targets.copy()
    changed[0, 1] = 5  # a real target changed: the loss does change
    assert float(value_and_grad(changed)[0]) != float(loss)
