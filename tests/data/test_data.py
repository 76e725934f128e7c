"""The byte tokenizer, the synthetic source's batches, the unigram baseline."""

import math

import numpy as np

from hydralearn.data import tokenizer
from hydralearn.data.corpus import synthetic_corpus, unigram_cross_entropy
from hydralearn.data.config import SyntheticData
from hydralearn.data.pipeline import heldout_batches, train_batch


def test_byte_tokenizer_round_trips_unicode():
    text = "déf λ(x): return '→' # 日本"
    tokens = tokenizer.BYTE.encode(text)
    assert max(tokens) < 256 and tokens == list(text.encode("utf-8"))
    assert tokenizer.BYTE.decode(tokens) == text
    assert tokenizer.BYTE.document(text) == tokens + [0]  # EOS: byte 0, which text never holds


def test_batches_are_a_pure_function_of_seed_and_step():
    corpus = synthetic_corpus(num_tokens=5000, vocab_size=256, seed=0)
    config = SyntheticData(seq_len=16, batch_size=4)
    first, again, other = (train_batch(config, corpus, step=s) for s in (3, 3, 4))
    assert np.array_equal(first.inputs, again.inputs)
    assert not np.array_equal(first.inputs, other.inputs)
    assert first.inputs.shape == (4, 16)
    np.testing.assert_array_equal(first.inputs[:, 1:], first.targets[:, :-1])
    evals = heldout_batches(config, corpus, num_batches=3)
    assert len(evals) == 3 and all(b.inputs.shape == (4, 16) for b in evals)


def test_unigram_cross_entropy_by_hand():
    train = np.array([0, 0, 0, 1], dtype=np.uint8)  # add-one counts over 4 symbols: 4, 2, 1, 1
    heldout = np.array([0, 1], dtype=np.uint8)
    expected = -(math.log(4 / 8) + math.log(2 / 8)) / 2
    assert math.isclose(unigram_cross_entropy(train, heldout, vocab_size=4), expected)
