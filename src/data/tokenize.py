"""Offline tokenization (hydralearn-tokenize): a data option's documents into token shards.

Every document of every source (train and held-out alike: a run from the shards splits them
again, by shard and document) becomes `[BOS] + tokens + [EOS]`, in the sources' order.
Worker processes (one per core) read and encode chunks of documents; the parent writes them in
order into shards of about `shard_tokens` tokens (data/shards.py).
"""

import dataclasses
import multiprocessing
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from hydralearn.data.config import DataConfig, Source
from hydralearn.data.inputs import Inputs, open_inputs
from hydralearn.data.shards import ShardWriter
from hydralearn.errors import ConfigError

_CHUNK = 256  # documents per task
_WORK: dict = {}  # what forked workers read: the open sources and the tokenizer


@dataclasses.dataclass(frozen=True)
class TokenizeResult:
    shards: int
    documents: int
    tokens: int
    bytes: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)


def _encode(task: tuple[int, int, int]) -> list[tuple[np.ndarray, int, int]]:
    """(tokens, UTF-8 bytes, split key) of each document of one chunk; runs in a worker process."""
    component, start, stop = task
    documents, tokenizer = _WORK["documents"][component], _WORK["tokenizer"]
    texts = [documents[i] for i in range(start, stop)]
    return [(np.asarray(tokenizer.wrap(ids), np.int32), len(text.encode("utf-8")), int(key))
            for ids, text, key in zip(tokenizer.encode_batch(texts), texts, documents.keys[start:stop])]


def open_for_tokenizing(config: DataConfig, out: Path) -> Inputs:
    """The sources to tokenize, opened and checked; ConfigError if they or `out` cannot be used."""
    if config.source is Source.chat:
        raise ConfigError(["data=chat is rendered, tokenized and masked when a run opens it; "
                           "there are no token shards of it to write"])
    if config.source in (Source.synthetic, Source.tokens):
        raise ConfigError([f"data={config.source.value} has no text to tokenize"])
    if Path(out).is_dir() and any(Path(out).glob("*.bin")):
        raise ConfigError([f"--out {out} already holds token shards; choose an empty directory"])
    return open_inputs(config)


def tokenize(inputs: Inputs, out: Path, *, workers: int | None = None, shard_tokens: int = 1 << 27,
             progress: Callable[[int], None] = lambda n: None) -> TokenizeResult:
    """Write the documents of `inputs` (open_for_tokenizing) into `out`; `progress` is called
    with the number of documents written after each chunk."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _WORK.update(documents=[s.documents for s in inputs.splits], tokenizer=inputs.tokenizer)
    tasks = [(c, start, min(start + _CHUNK, len(s.documents)))
             for c, s in enumerate(inputs.splits) for start in range(0, len(s.documents), _CHUNK)]
    started = time.perf_counter()
    writers: list[dict] = []
    writer, documents = None, 0
    workers = workers or os.cpu_count() or 1
    # Forked workers inherit the opened sources; the tokenizers library must not be in
    # parallel use across a fork, so each worker encodes single-threaded.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for chunk in pool.imap(_encode, tasks):
            for tokens, num_bytes, key in chunk:
                if writer is None:
                    writer = ShardWriter(out, f"shard_{len(writers):05d}", identity=inputs.tokenizer.identity)
                writer.add(tokens, num_bytes, key)
                if writer.offsets[-1] >= shard_tokens:
                    writers.append(writer.close())
                    writer = None
            documents += len(chunk)
            progress(documents)
    if writer is not None:
        writers.append(writer.close())
    return TokenizeResult(shards=len(writers), documents=documents,
                          tokens=sum(r["num_tokens"] for r in writers),
                          bytes=sum(r["num_bytes"] for r in writers),
                          seconds=time.perf_counter() - started)
