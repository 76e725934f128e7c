"""Corpora that need no download: the Python standard library's own sources, and synthetic data."""

import dataclasses
import hashlib
import sysconfig
from pathlib import Path

import numpy as np


@dataclasses.dataclass(frozen=True)
class Corpus:
    train: np.ndarray  # (N,) uint8 tokens
    heldout: np.ndarray  # (M,) uint8 tokens
    description: str


def stdlib_corpus(*, max_bytes: int, heldout_percent: int) -> Corpus:
    """The .py files of this interpreter's standard library, split into train/held-out by file.

    Files are read in sorted order and the split hashes each relative path, so the split is the
    same on every machine with the same Python version.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    train, heldout, total = [], [], 0
    for path in paths:
        data = path.read_bytes()
        if not data or total >= max_bytes:
            continue
        total += len(data)
        bucket = int(hashlib.sha1(str(path.relative_to(root)).encode()).hexdigest(), 16) % 100
        (heldout if bucket < heldout_percent else train).append(data)
    if not train or not heldout:
        raise ValueError(f"the standard library at {root} yielded too little text for a "
                         f"train/held-out split ({len(train)} train, {len(heldout)} held-out files)")
    return Corpus(train=_join(train), heldout=_join(heldout),
                  description=f"stdlib sources at {root}: {len(train)} train / {len(heldout)} held-out files")


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


def _join(chunks: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(chunks), dtype=np.uint8)


def unigram_cross_entropy(train: np.ndarray, heldout: np.ndarray, vocab_size: int = 256) -> float:
    """Held-out loss (nats/token) of the byte-frequency model fitted on train, add-one smoothed."""
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64) + 1.0
    log_probs = np.log(counts / counts.sum())
    return float(-log_probs[heldout].mean())
