"""KV-cache generation against full recomputation (no cache), for every position variant and
MoE; sampling rules against numpy; the cache's placement on a tensor-parallel mesh."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tests.conftest import tiny_config
from hydralearn.compose.build import abstract_params, build
from hydralearn.compose.mesh import make_mesh
from hydralearn.layers.kv_cache import KVCache, Step
from hydralearn.runtime.generate import STOPPED, Generator, bucket, choose, generation_config
from hydralearn.runtime.sampling import Sampling

PROMPTS = [[5, 17, 99], [200, 3, 3, 41, 7, 12, 150], [1]]  # different lengths, one batch
NEW = 12
MOE = ["model/ffn=moe", "model.ffn.num_experts=4", "model.ffn.every=2"]  # dense, then MoE

VARIANTS = {
    "rope": [],
    "rope_llama3": ["model/position=rope_llama3", "model.position.original_max_position=16"],
    "yarn": ["model/position=yarn", "model.position.original_max_position=8"],
    "rope_linear": ["model/position=rope_linear"],
    "none": ["model/position=none"],
    # capacity dispatch in training; generation runs it dropless (MoEConfig.for_generation)
    "moe": MOE,
}


@functools.cache
def initial_params(moe: bool) -> nnx.State:
    """Random normal weights made by numpy (jitted random init compiles for seconds). Position
    variants have no parameters: every dense variant shares one set."""
    _, abstract = abstract_params(tiny_config(*(MOE if moe else [])))
    rng = np.random.default_rng(0)
    return jax.tree.map(lambda x: jnp.asarray(rng.normal(0.0, 0.2, x.shape), x.dtype), abstract)


def merged(config, params) -> nnx.Module:
    return nnx.merge(abstract_params(config)[0], params)


def cached_greedy(config, params, prompts, new: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode steps only, from an empty cache: position p of every row goes in at step p (its
    prompt token, else the argmax of its previous logits). Returns the rows (B, P + new)
    and the logits (B, P + new - 1, V) at every position, P the longest prompt."""
    model, m, batch = merged(config, params), config.model, len(prompts)
    cache = KVCache.zeros(num_layers=m.num_layers, batch=batch, length=32, num_kv_heads=m.num_kv_heads,
                          head_dim=m.resolved_head_dim, dtype="float32")
    decode = jax.jit(lambda t, p, c: model.extend(t[:, None], p, c, Step.decode,
                                                  logits_at=jnp.zeros(batch, jnp.int32)))
    width = max(map(len, prompts)) + new
    rows = np.zeros((batch, width), np.int32)
    steps = []
    for position in range(width - 1):
        for r, prompt in enumerate(prompts):
            rows[r, position] = prompt[position] if position < len(prompt) else steps[-1][r].argmax()
        logits, cache = decode(jnp.asarray(rows[:, position]), jnp.full((batch, 1), position), cache)
        steps.append(np.asarray(logits))
    rows[:, -1] = steps[-1].argmax(-1)
    return rows, np.stack(steps, axis=1)


def recomputed(config, params, rows: np.ndarray) -> np.ndarray:
    """No cache: the logits (B, T, V) at every position from one full causal pass (position t
    sees tokens 0..t only, as when the sequence was t + 1 tokens long)."""
    return np.asarray(jax.jit(lambda t: merged(config, params)(t).logits)(jnp.asarray(rows)))


@pytest.mark.parametrize("name", VARIANTS)
def test_kv_cache_equals_recomputation(name):
    """Logits at every position agree, so no-cache greedy decoding picks the same tokens."""
    config = generation_config(tiny_config(*VARIANTS[name]))
    params = initial_params(name == "moe")
    rows, logits = cached_greedy(config, params, PROMPTS, NEW)
    expected = recomputed(config, params, rows)[:, :-1]
    np.testing.assert_allclose(logits, expected, atol=2e-5, rtol=1e-5, err_msg=name)
    for r, prompt in enumerate(PROMPTS):  # the greedy tokens, as recomputation would choose them
        np.testing.assert_array_equal(rows[r, len(prompt):], expected[r, len(prompt) - 1:].argmax(-1))


def test_capacity_dispatch_is_not_causal():
    """Why generation runs MoE dropless (the equality above): with capacity dispatch a later
    token can take an earlier token's expert slot, so earlier outputs depend on later tokens."""
    config = tiny_config(*MOE, "model.ffn.capacity_factor=0.5")
    tokens = np.random.default_rng(0).integers(0, 256, (4, 16))
    changed = np.concatenate([tokens[:, :8], np.random.default_rng(1).integers(0, 256, (4, 8))], 1)
    before, after = recomputed(config, initial_params(True), np.stack([tokens, changed]).reshape(8, 16)
                               ).reshape(2, 4, 16, -1)[:, :, :8]
    assert np.max(np.abs(before - after)) > 1e-4


@pytest.fixture(scope="module")
def rope_generator() -> Generator:
    config = tiny_config()
    return Generator(config, initial_params(False), mesh=make_mesh(config.mesh.axes, jax.devices()[:1]))


def test_generator_greedy_equals_recomputation(rope_generator):
    """The Generator (a batch of three lengths, bucketed, prefill + in-jit decode loop) ==
    the no-cache argmax chain; streamed in chunks with an eos, each row ends at its eos."""
    got = rope_generator.generate(PROMPTS, max_new_tokens=NEW, sampling=Sampling())
    rows = np.zeros((len(PROMPTS), max(map(len, PROMPTS)) + NEW), np.int32)
    for r, (prompt, new) in enumerate(zip(PROMPTS, got)):
        rows[r, :len(prompt) + NEW] = prompt + new
    expected = recomputed(tiny_config(), rope_generator.params, rows)
    for r, prompt in enumerate(PROMPTS):
        assert got[r] == expected[r, len(prompt) - 1:len(prompt) - 1 + NEW].argmax(-1).tolist()
    eos = got[1][4]
    streamed = [[] for _ in PROMPTS]
    for new in rope_generator.stream(PROMPTS, max_new_tokens=NEW, sampling=Sampling(), chunk=5,
                                     eos_ids=(eos,)):
        for row, tokens in zip(streamed, new):
            row.extend(t for t in tokens.tolist() if t != STOPPED)
    assert streamed == [want[:want.index(eos) + 1] if eos in want else want for want in got]


def test_sampling_is_reproducible(rope_generator):
    def run(seed):
        return rope_generator.generate(PROMPTS, max_new_tokens=NEW,
                                       sampling=Sampling(temperature=1.5, seed=seed))

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_top_k_one_and_tiny_top_p_are_greedy():
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(256, 300)).astype(np.float32))
    greedy = np.asarray(logits).argmax(-1)
    for sampling in (Sampling(temperature=2.0, top_k=1), Sampling(temperature=2.0, top_p=1e-6)):
        np.testing.assert_array_equal(choose(logits, jax.random.key(7), sampling), greedy)
    assert not np.array_equal(choose(logits, jax.random.key(7), Sampling(temperature=2.0)), greedy)


def test_choose_keeps_the_top_k_and_the_nucleus():
    """Support of many draws against the sets numpy computes from the probabilities."""
    logits = np.log(np.array([[0.05, 0.4, 0.1, 0.3, 0.15]], np.float32))
    keys = jax.random.split(jax.random.key(0), 400)

    def support(sampling):
        draws = jax.vmap(lambda k: choose(jnp.asarray(logits), k, sampling))(keys)
        return set(np.asarray(draws).ravel().tolist())

    order = np.argsort(-logits[0])
    assert support(Sampling(temperature=1.0, top_k=2)) == set(order[:2].tolist())
    cumulative = np.cumsum(np.exp(logits[0])[order])
    nucleus = set(order[:np.searchsorted(cumulative, 0.75) + 1].tolist())  # 0.4+0.3+0.15 >= 0.75
    assert support(Sampling(temperature=1.0, top_p=0.75)) == nucleus == {1, 3, 4}
    assert support(Sampling(temperature=1.0)) == set(range(5))


def test_buckets_share_compiled_shapes():
    assert [bucket(n) for n in (1, 16, 17, 100, 128, 129, 300)] == [16, 16, 32, 128, 128, 256, 384]


def test_cache_is_sharded_like_the_model_on_a_tensor_parallel_mesh(rope_generator):
    """kv_heads over the tensor axis, batch over fsdp; same tokens as on one device."""
    config = tiny_config("mesh=fsdp_tp", "sharding=fsdp_tp", device_count=8)
    assert config.mesh.axes["tensor"] == 2 and config.mesh.axes["fsdp"] == 4
    program = build(config, devices=jax.devices())
    params = jax.device_put(rope_generator.params, program.state_shardings.params)
    sharded = Generator(config, params, mesh=program.mesh)
    state, _ = sharded.prefill(PROMPTS, max_new_tokens=NEW, sampling=Sampling())
    spec = state.cache.k.sharding.spec  # (layers, batch, kv_heads, length, head_dim)
    assert "fsdp" in jax.tree.leaves(spec[1]) and spec[2] == "tensor", spec
    assert state.cache.k.shape[1] == 4  # 3 prompts, padded to the 4 batch shards
    want = rope_generator.generate(PROMPTS, max_new_tokens=NEW, sampling=Sampling())
    assert sharded.generate(PROMPTS, max_new_tokens=NEW, sampling=Sampling()) == want
