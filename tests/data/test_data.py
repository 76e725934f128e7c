"""Tokenizer, corpus split and batches."""

import math

import numpy as np

from hydralearn.data import tokenizer
from hydralearn.data.corpus import stdlib_corpus, synthetic_corpus, unigram_cross_entropy
from hydralearn.data.pipeline import DataConfig, heldout_batches, train_batch


def test_byte_tokenizer_round_trips_unicode():
    text = "déf λ(x): return '→' # 日本"
    tokens = tokenizer.encode(text)
    assert tokens.max() < 256 and len(tokens) == len(text.encode("utf-8"))
    assert tokenizer.decode(tokens) == text


def test_stdlib_corpus_is_deterministic_and_split_by_file():
    a = stdlib_corpus(max_bytes=2_000_000, heldout_percent=10)
    b = stdlib_corpus(max_bytes=2_000_000, heldout_percent=10)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.heldout, b.heldout)
    assert 0.02 < len(a.heldout) / (len(a.train) + len(a.heldout)) < 0.3
    # Split by file: a 200-byte window of held-out text almost never appears verbatim in train.
    train_text = a.train.tobytes()
    probes = [a.heldout[i:i + 200].tobytes() for i in range(0, len(a.heldout) - 200, len(a.heldout) // 20)]
    assert sum(p in train_text for p in probes) <= 2


def test_batches_are_a_pure_function_of_seed_and_step():
    corpus = synthetic_corpus(num_tokens=5000, vocab_size=256, seed=0)
    config = DataConfig(seq_len=16, batch_size=4)
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
