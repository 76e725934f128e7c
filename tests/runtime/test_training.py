"""Training numerics: a batch overfits, sharded-state init."""

import math

import jax
import pytest

from hydralearn.compose.build import build
from hydralearn.data.corpus import synthetic_corpus
from hydralearn.data.pipeline import train_batch
from tests.conftest import tiny_config


def test_one_batch_overfits(one_device):
    program = build(tiny_config("schedule=constant", "schedule.warmup_steps=0", "optim.lr=1e-2",
                                "trainer.steps=60"), devices=one_device)
    config = program.config
    corpus = synthetic_corpus(num_tokens=10_000, vocab_size=256, seed=0)
    batch = train_batch(config.data, corpus, step=0)
    inputs = jax.device_put(batch.inputs, program.batch_sharding)
    targets = jax.device_put(batch.targets, program.batch_sharding)
    state = program.init_state()
    losses = []
    for _ in range(60):
        state, metrics = program.train_step(state, inputs, targets)
        losses.append(float(metrics["loss"]))
    assert losses[0] > 0.9 * math.log(256)  # starts near uniform
    assert losses[-1] < 0.25 * losses[0], losses[::10]
    assert int(state.step) == 60


@pytest.mark.slow
def test_state_is_created_sharded_on_eight_devices():
    program = build(tiny_config("mesh.axes.fsdp=8", device_count=8), devices=jax.devices())
    state = program.init_state()
    table = state.params["embed"]["table"][...]  # (vocab, embed): embed -> fsdp
    assert table.sharding.spec == jax.sharding.PartitionSpec("tensor", "fsdp")  # tensor has size 1
    shard_shapes = {s.data.shape for s in table.addressable_shards}
    assert shard_shapes == {(256, 32 // 8)}
    mu = jax.tree.leaves(state.opt_state)  # Adam moments follow their parameter's sharding
    assert any(getattr(x, "sharding", None) == table.sharding and x.shape == table.shape for x in mu)
