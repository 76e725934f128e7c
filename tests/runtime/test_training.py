"""Training numerics: a batch overfits, sharded-state init, schedule."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from flax import nnx

from hydralearn.compose.build import build
from hydralearn.compose.optim import OptimConfig, build_optimizer
from hydralearn.data.corpus import synthetic_corpus
from hydralearn.data.pipeline import train_batch
from tests.conftest import tiny_config


def test_one_batch_overfits(one_device):
    program = build(tiny_config("optim.warmup_steps=0", "optim.lr=1e-2", "optim.min_lr_ratio=1.0",
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


def test_learning_rate_follows_warmup_then_cosine(tiny_program):
    schedule, optim = tiny_program.schedule, tiny_program.config.optim
    steps, warmup = tiny_program.config.trainer.steps, optim.warmup_steps
    assert float(schedule(0)) == 0.0
    np.testing.assert_allclose(schedule(warmup // 2), optim.lr * (warmup // 2) / warmup, rtol=1e-5)
    np.testing.assert_allclose(schedule(warmup), optim.lr, rtol=1e-5)
    midway = warmup + (steps - warmup) // 2
    cosine = 0.5 * (1 + math.cos(math.pi * (midway - warmup) / (steps - warmup)))
    end = optim.lr * optim.min_lr_ratio
    np.testing.assert_allclose(schedule(midway), end + (optim.lr - end) * cosine, rtol=1e-4)
    np.testing.assert_allclose(schedule(steps), end, rtol=1e-5)


def test_weight_decay_skips_norm_scales():
    """AdamW with zero gradients only decays (Loshchilov & Hutter): w -= lr * wd * w."""
    optimizer = build_optimizer(OptimConfig(lr=0.1, warmup_steps=0, min_lr_ratio=1.0, weight_decay=0.5),
                                total_steps=10)
    params = {"attention": {"q": nnx.Param(jnp.full((2, 2), 2.0))},
              "norm": {"scale": nnx.Param(jnp.ones(2))}}
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = optimizer.transform.update(zeros, optimizer.transform.init(params), params)
    np.testing.assert_allclose(updates["attention"]["q"][...], -0.1 * 0.5 * 2.0, rtol=1e-6)
    np.testing.assert_array_equal(updates["norm"]["scale"][...], 0.0)


def test_state_is_created_sharded_on_eight_devices():
    program = build(tiny_config("mesh.axes.fsdp=8", device_count=8), devices=jax.devices())
    state = program.init_state()
    table = state.params["embed"]["table"][...]  # (vocab, embed): embed -> fsdp
    assert table.sharding.spec == jax.sharding.PartitionSpec("tensor", "fsdp")  # tensor has size 1
    shard_shapes = {s.data.shape for s in table.addressable_shards}
    assert shard_shapes == {(256, 32 // 8)}
    mu = jax.tree.leaves(state.opt_state)  # Adam moments follow their parameter's sharding
    assert any(getattr(x, "sharding", None) == table.sharding and x.shape == table.shape for x in mu)
