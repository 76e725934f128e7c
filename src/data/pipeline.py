"""data=synthetic: batches of random windows of one stream, a pure function of (seed, step)."""

import dataclasses

import numpy as np

from hydralearn.data.config import BYTE_VOCAB_SIZE, DataConfig, SyntheticData
from hydralearn.data.corpus import Corpus, synthetic_corpus


@dataclasses.dataclass(frozen=True)
class Batch:
    inputs: np.ndarray  # (B, T) int32
    targets: np.ndarray  # (B, T) int32: inputs shifted left by one


def load_corpus(config: SyntheticData) -> Corpus:
    return synthetic_corpus(num_tokens=config.num_tokens, vocab_size=BYTE_VOCAB_SIZE, seed=config.seed)


def train_batch(config: DataConfig, corpus: Corpus, step: int) -> Batch:
    """Random windows of the train split; the same (seed, step) always gives the same batch."""
    rng = np.random.default_rng([config.seed, step])
    starts = rng.integers(0, len(corpus.train) - config.seq_len - 1, size=config.batch_size)
    return _windows(corpus.train, starts, config.seq_len)


def heldout_batches(config: DataConfig, corpus: Corpus, num_batches: int) -> list[Batch]:
    """Evenly spaced, fixed windows of the held-out split."""
    count = num_batches * config.batch_size
    starts = np.linspace(0, len(corpus.heldout) - config.seq_len - 2, count).astype(np.int64)
    return [_windows(corpus.heldout, starts[i:i + config.batch_size], config.seq_len)
            for i in range(0, count, config.batch_size)]


def _windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int) -> Batch:
    idx = starts[:, None] + np.arange(seq_len + 1)  # (B, T + 1)
    window = tokens[idx].astype(np.int32)
    return Batch(inputs=window[:, :-1], targets=window[:, 1:])
