"""data.packing=segments: documents whole in rows with segment ids and restarting positions;
attention never crosses a document (xla kernel), padding stays out of the loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hydralearn.config import compose as compose_config
from hydralearn.compose.build import build
from hydralearn.compose.resolve import resolve
from hydralearn.data.inputs import open_inputs
from hydralearn.data.loader import Loader
from hydralearn.errors import ConfigError
from tests.conftest import tiny_config
from tests.data import reference as ref
from tests.data.test_sources import load_data


def test_rows_hold_whole_documents_with_restarting_positions(corpus, bpe):
    data = load_data("data=jsonl", f"data.paths=['{corpus['jsonl']}/*.jsonl']", "data.packing=segments",
                     "data/tokenizer=hf", f"data.tokenizer.path={bpe}", "data.seq_len=256")
    texts = ref.jsonl_texts(corpus["jsonl"], "*.jsonl")
    loader = Loader(data, inputs=open_inputs(data))
    batches = [next(loader) for _ in range(3)]  # less than an epoch
    loader.close()
    encoded = {tuple(loader.tokenizer.document(t)): n for n, t in enumerate(texts)}
    seen = []
    for batch in batches:
        for row in range(batch.inputs.shape[0]):
            ids, pos = batch.segment_ids[row], batch.positions[row]
            for segment in np.unique(ids[ids > 0]):
                where = np.flatnonzero(ids == segment)
                assert np.array_equal(where, np.arange(where[0], where[-1] + 1))  # contiguous
                np.testing.assert_array_equal(pos[where], np.arange(len(where)))  # restart at 0
                tokens = tuple(batch.inputs[row, where]) + (batch.targets[row, where[-1]],)
                seen.append(encoded[tokens])  # a whole document, exactly
            padding = ids == 0
            assert not batch.mask[row, padding].any()  # padding is out of the loss
    assert len(set(seen)) == len(seen) > 10
    assert 0 < np.mean([loader.stats(b)["padding_share"] for b in batches]) < 0.5


@pytest.fixture(scope="module")
def segment_program():
    return build(tiny_config("kernel=xla", "data.seq_len=32"), devices=jax.devices()[:1])


def _logits(apply, params, tokens, segment_ids=None, positions=None):
    """One row's logits (T, V); without segment ids, the row is one sequence."""
    extra = {} if segment_ids is None else dict(positions=jnp.asarray([positions], jnp.int32),
                                                 segment_ids=jnp.asarray([segment_ids], jnp.int32))
    return np.asarray(apply(params, jnp.asarray([tokens], jnp.int32), **extra)[0])


def test_a_document_does_not_see_its_neighbour(segment_program):
    program = segment_program
    params = program.init_state().params
    apply = jax.jit(lambda p, tokens, **kw: program.apply(p, tokens, **kw).logits)
    rng = np.random.default_rng(0)
    a, b, b2 = rng.integers(1, 256, 12), rng.integers(1, 256, 14), rng.integers(1, 256, 14)
    pad = np.zeros(32 - 26, np.int64)
    segments = np.concatenate([np.full(12, 1), np.full(14, 2), pad])
    positions = np.concatenate([np.arange(12), np.arange(14), pad])
    packed = _logits(apply, params, np.concatenate([a, b, pad]), segments, positions)
    changed = _logits(apply, params, np.concatenate([a, b2, pad]), segments, positions)
    np.testing.assert_array_equal(packed[:12], changed[:12])  # a's logits: bit for bit
    # b packed after a equals b alone at the start of a row: positions restart, nothing of a leaks.
    alone = _logits(apply, params, np.concatenate([b, np.zeros(18, np.int64)]),
                    np.concatenate([np.ones(14), np.zeros(18)]), np.concatenate([np.arange(14), np.zeros(18)]))
    np.testing.assert_allclose(packed[12:26], alone[:14], atol=2e-5)
    # The check can fail: without segment ids, b attends to a and its logits move.
    unmasked = _logits(apply, params, np.concatenate([a, b, pad]))
    assert np.abs(unmasked[12:26] - alone[:14]).max() > 1e-3


def test_loss_skips_padding(segment_program):
    program = segment_program
    params = program.init_state().params
    tokens = np.arange(8 * 32).reshape(8, 32) % 256
    segments = np.ones((8, 32), np.int32)
    segments[:, 20:] = 0
    positions = np.tile(np.arange(32), (8, 1))
    loss = float(program.eval_step(params, tokens, tokens, {"positions": positions, "segment_ids": segments}))
    logits = np.asarray(jax.jit(lambda p, t: program.apply(p, t).logits)(params, jnp.asarray(tokens)), np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    picked = np.take_along_axis(logp, tokens[..., None], -1)[..., 0]
    assert loss == pytest.approx(-picked[:, :20].mean(), rel=1e-5)  # causal: padding after is unseen


def test_cudnn_masks_documents_only_on_even_lengths():
    segments = ["data.packing=segments", "hardware=gpu_h100", "data.batch_size=8"]
    with pytest.raises(ConfigError, match=r"needs data.seq_len even with data.packing=segments \(not 255"):
        resolve(compose_config.load([*segments, "kernel=cudnn", "data.seq_len=255"]), device_count=8)
    assert resolve(compose_config.load([*segments, "kernel=cudnn", "data.seq_len=256"]),
                   device_count=8).kernel.name.value == "cudnn"
    assert resolve(compose_config.load([*segments, "kernel=auto"]), device_count=8).kernel.name.value == "xla"
