"""Token shards (`data=tokens`), written by hydralearn-tokenize and memory-mapped for training.

A shard is three files with one stem:
- `<stem>.bin`: the documents' tokens back to back, little-endian uint16 (vocabularies up to
  65,536) or uint32; every document is `[BOS] + tokens + [EOS]` as the loader trains on it;
- `<stem>.idx`: little-endian uint64 offsets (in tokens) of each document's start, plus the end;
- `<stem>.keys`: little-endian uint64 per document, the held-out split's key of the document it
  was made from (data/sources.py record_keys), so shards split as their source does (shards
  written before it existed, with no `"keys": true` in their record, split by shard and index);
- `<stem>.json`: the record: format, dtype, the tokenizer's identity (kind, sha256 of its
  file, vocabulary size), counts of documents, tokens and source bytes (for bits per byte).
"""

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from hydralearn.data.check import SHARD_FORMAT, read_record



def dtype_for(vocab_size: int) -> np.dtype:
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


@dataclasses.dataclass(frozen=True)
class Shard:
    path: Path  # the .bin file
    record: dict
    tokens: np.ndarray  # memory-mapped (num_tokens,)
    offsets: np.ndarray  # memory-mapped (num_documents + 1,)
    keys: np.ndarray | None  # memory-mapped (num_documents,): each source document's split key

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        return self.tokens[int(self.offsets[index]):int(self.offsets[index + 1])].astype(np.int32)

    def tokens_of(self, index: int, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) of document `index`, reading only those."""
        first, end = int(self.offsets[index]), int(self.offsets[index + 1])
        return self.tokens[first + start:min(first + stop, end)].astype(np.int32)


def open_shard(bin_path: Path) -> Shard:
    record = read_record(bin_path)
    dtype = np.dtype(record["dtype"])
    expected = record["num_tokens"] * dtype.itemsize
    if bin_path.stat().st_size != expected:
        raise ValueError(f"{bin_path}: {bin_path.stat().st_size} bytes, its record says "
                         f"{record['num_tokens']} {record['dtype']} tokens ({expected} bytes)")
    tokens = np.memmap(bin_path, dtype=dtype, mode="r") if expected else np.zeros(0, dtype)
    offsets = np.memmap(bin_path.with_suffix(".idx"), dtype="<u8", mode="r")
    if len(offsets) != record["num_documents"] + 1 or int(offsets[-1]) != record["num_tokens"]:
        raise ValueError(f"{bin_path.with_suffix('.idx')}: does not match its record")
    keys = None
    if record.get("keys"):
        keys_path = bin_path.with_suffix(".keys")
        if not keys_path.is_file() or keys_path.stat().st_size != 8 * record["num_documents"]:
            raise ValueError(f"{keys_path}: missing or does not match its record")
        keys = np.memmap(keys_path, dtype="<u8", mode="r") if record["num_documents"] else np.zeros(0, "<u8")
    return Shard(path=bin_path, record=record, tokens=tokens, offsets=offsets, keys=keys)


class ShardWriter:
    """Writes documents into `<directory>/<stem>.{bin,idx,json}`; the record goes last, so a
    shard without one is incomplete and never read."""

    def __init__(self, directory: Path, stem: str, *, identity: dict):
        self.bin_path = Path(directory) / f"{stem}.bin"
        self.identity = identity
        self.dtype = dtype_for(identity["vocab_size"])
        self._file = open(self.bin_path, "wb")
        self.offsets = [0]
        self.keys: list[int] = []
        self.num_bytes = 0

    def add(self, tokens: np.ndarray, num_bytes: int, key: int) -> None:
        """One document's tokens, the bytes of text they encode and its source's split key."""
        self._file.write(np.asarray(tokens, self.dtype).tobytes())
        self.offsets.append(self.offsets[-1] + len(tokens))
        self.keys.append(key)
        self.num_bytes += num_bytes

    def close(self) -> dict:
        self._file.close()
        np.asarray(self.offsets, "<u8").tofile(self.bin_path.with_suffix(".idx"))
        np.asarray(self.keys, "<u8").tofile(self.bin_path.with_suffix(".keys"))
        record = {"format": SHARD_FORMAT, "dtype": self.dtype.name, "tokenizer": self.identity,
                  "num_documents": len(self.offsets) - 1, "num_tokens": self.offsets[-1],
                  "num_bytes": self.num_bytes, "keys": True}
        tmp = self.bin_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, self.bin_path.with_suffix(".json"))
        return record
