"""The synthetic corpus (data=synthetic): one token stream, no documents; and the unigram baseline."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Corpus:
    train: np.ndarray  # (N,) uint8 tokens
    heldout: np.ndarray  # (M,) uint8 tokens
    description: str


def synthetic_corpus(*, num_tokens: int, vocab_size: int, seed: int) -> Corpus:
    """Tokens from a fixed random order-1 Markov chain with sparse transitions: learnable."""
    rng = np.random.default_rng(seed)
    next_choices = rng.integers(0, vocab_size, size=(vocab_size, 4))
    tokens = np.empty(num_tokens + num_tokens // 10, dtype=np.uint8)
    tokens[0] = 0
    picks = rng.integers(0, 4, size=len(tokens))
    for i in range(1, len(tokens)):
        tokens[i] = next_choices[tokens[i - 1], picks[i]]
    return Corpus(train=tokens[:num_tokens], heldout=tokens[num_tokens:],
                  description=f"synthetic Markov chain, {num_tokens} train tokens")


def unigram_cross_entropy(train: np.ndarray, heldout: np.ndarray, vocab_size: int = 256) -> float:
    """Held-out loss (nats/token) of the byte-frequency model fitted on train, add-one smoothed."""
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64) + 1.0
    log_probs = np.log(counts / counts.sum())
    return float(-log_probs[heldout].mean())
