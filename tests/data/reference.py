"""The independent reference for the loader's token stream: documents read with plain Python,
each encoded by the tokenizer library itself, wrapped in BOS/EOS, joined, cut into windows."""

import json
import sysconfig
from pathlib import Path

import numpy as np


def byte_encoder():
    return lambda text: list(text.encode("utf-8")) + [0]


def bpe_encoder(path: Path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    eos = tokenizer.token_to_id("<|endoftext|>")
    return lambda text: tokenizer.encode(text, add_special_tokens=False).ids + [eos]


def spm_encoder(path: Path):
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(path))
    return lambda text: [processor.bos_id()] + processor.encode(text) + [processor.eos_id()]


def jsonl_texts(directory: Path, pattern: str, key: str = "text") -> list[str]:
    import gzip
    import zstandard

    out = []
    for path in sorted(directory.glob(pattern)):
        raw = path.read_bytes()
        raw = gzip.decompress(raw) if path.suffix == ".gz" else \
            zstandard.ZstdDecompressor().decompressobj().decompress(raw) if path.suffix == ".zst" else raw
        out += [json.loads(line)[key] for line in raw.decode().splitlines() if line.strip()]
    return out


def stdlib_texts(max_bytes: int) -> list[str]:
    root, out, total = Path(sysconfig.get_paths()["stdlib"]), [], 0
    for path in sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts):
        data = path.read_bytes()
        if data and total < max_bytes:
            out.append(data.decode("utf-8", errors="replace"))
            total += len(data)
    return out


def windows(batches) -> np.ndarray:
    """Each row's window (inputs + the last target): (rows, T + 1), checking targets = shifted inputs."""
    rows = []
    for batch in batches:
        np.testing.assert_array_equal(batch.inputs[:, 1:], batch.targets[:, :-1])
        rows += [np.append(i, t[-1]) for i, t in zip(batch.inputs, batch.targets)]
    return np.stack(rows)


def cut(stream: np.ndarray, length: int) -> np.ndarray:
    """Consecutive windows of `length` tokens; a shorter tail is dropped. (N, length)"""
    full = len(stream) // length
    return np.asarray(stream[:full * length]).reshape(full, length)


def same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    """The same rows, counted with repeats, in any order."""
    return sorted(map(bytes, np.asarray(a, np.int64))) == sorted(map(bytes, np.asarray(b, np.int64)))


def pieces(stream, eos: int) -> list[tuple[int, ...]]:
    """The stream split after each EOS (a trailing partial document is dropped)."""
    out, current = [], []
    for token in stream:
        current.append(int(token))
        if token == eos:
            out.append(tuple(current))
            current = []
    return out


def first_epoch(found: list[tuple[int, ...]], reference: dict[tuple[int, ...], int]) -> list[int]:
    """Document numbers in stream order up to the first repeat (the next epoch's start)."""
    order = []
    for piece in found:
        assert piece in reference, f"a piece of the stream is no document: {piece[:20]}"
        if reference[piece] in order:
            break
        order.append(reference[piece])
    return order
