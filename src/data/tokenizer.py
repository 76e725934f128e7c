"""Byte-level tokenizer: token id = byte value, vocab 256, lossless on any text."""

import numpy as np

from hydralearn.data.config import BYTE_VOCAB_SIZE as VOCAB_SIZE


def encode(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)


def decode(tokens) -> str:
    return bytes(int(t) for t in tokens if 0 <= int(t) < VOCAB_SIZE).decode("utf-8", errors="replace")
