"""Document sources: random access to a corpus's documents (a Grain data source: len and
getitem), each with a split key, opened and checked before any training starts.

Opening reads what it must to find every document and every bad input: globs that match
nothing, unreadable or empty files, JSON lines that do not parse or lack the text key (with
file and line), Parquet rows without text, token shards of another tokenizer. Every problem is
a one-line ConfigError (exit 2). Documents are then read lazily: text files and JSON lines
from memory-mapped files, Parquet and `datasets` columns from Arrow, token shards from
memory-mapped arrays. Compressed JSON lines (.gz, .zst) are held decompressed in memory.
"""

import dataclasses
import gzip
import hashlib
import json
import logging
import mmap
import os
import sysconfig
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hydralearn.data import shards
from hydralearn.data.check import expand, identity_problem
from hydralearn.data.config import BadRecords, Source
from hydralearn.data.tokenizer import Tokenizer
from hydralearn.errors import ConfigError

logger = logging.getLogger(__name__)
_SHOWN = 3  # bad records named in a warning


@dataclasses.dataclass
class Documents:
    """Documents of one source: `docs[i]` is a str, or for token shards an int32 array that
    already holds BOS/EOS. `keys` (uint64 per document) decide the held-out split."""

    description: str
    keys: np.ndarray
    read: Callable[[int], Any]
    bad_records: list[str] = dataclasses.field(default_factory=list)  # skipped, one line each
    recorded_bytes_per_token: float | None = None  # token shards record their source's bytes
    token_counts: np.ndarray | None = None  # (N,) BOS/EOS included; token shards record them
    read_tokens: Callable[[int, int, int], np.ndarray] | None = None  # (i, start, stop): shards

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int):
        return self.read(int(index))


def open_source(spec, *, key: str, tokenizer: Tokenizer, bad_records: BadRecords,
                paths: list[str] | None = None) -> Documents:
    """The documents `spec` (a data option or a mixture component) names; `key` is its
    config key for messages ("data", "data.mixture.code"); `paths` replaces spec.paths."""
    source = spec.source
    if source is Source.stdlib:
        return _text(_stdlib_files(spec.max_bytes), f"stdlib sources at {_stdlib_root()}")
    if source is Source.hf_disk:
        return _hf_disk(spec, key=key, bad_records=bad_records)
    files = expand(paths if paths is not None else spec.paths, key=f"{key}.paths")
    if source is Source.text:
        return _text(files, f"{len(files)} text files")
    if source is Source.jsonl:
        return _jsonl(files, text_key=spec.text_key, key=key, bad_records=bad_records)
    if source is Source.parquet:
        return _parquet(files, text_key=spec.text_key, key=key, bad_records=bad_records)
    if source is Source.tokens:
        return _tokens(files, tokenizer=tokenizer, key=key)
    raise ValueError(f"{source} is not a document source")


def file_key(name: str) -> int:
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "little")


def record_keys(name: str, count: int) -> np.ndarray:
    """A well-mixed uint64 per record of file `name` (splitmix64 of the file's hash + index)."""
    x = np.uint64(file_key(name)) + np.arange(count, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_files(max_bytes: int) -> list[tuple[Path, str]]:
    """The standard library's non-empty .py files in sorted order, up to `max_bytes`."""
    root, out, total = _stdlib_root(), [], 0
    for path in sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts):
        size = path.stat().st_size
        if size and total < max_bytes:
            out.append((path, str(path.relative_to(root))))
            total += size
    return out


def _text(files: list[tuple[Path, str]], description: str) -> Documents:
    paths = [p for p, _ in files]
    keys = np.array([record_keys(name, 1)[0] for _, name in files], dtype=np.uint64)
    return Documents(description=description, keys=keys,
                     read=lambda i: paths[i].read_bytes().decode("utf-8", errors="replace"))


def file_bytes(path: Path):
    """The file's bytes: memory-mapped, or decompressed into memory for .gz and .zst."""
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    if path.suffix == ".zst":
        import zstandard

        with open(path, "rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as reader:
            return reader.read()
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


class BadRecordLog:
    """Bad records: the first stops the run (bad_records=error) or all are counted (skip)."""

    def __init__(self, policy: BadRecords, key: str):
        self.policy, self.key, self.lines = policy, key, []

    def add(self, where: str, problem: str, fix: str) -> None:
        line = f"{where}: {problem}"
        if self.policy is BadRecords.error:
            raise ConfigError([f"{self.key}: {line}; {fix} or set data.bad_records=skip"])
        self.lines.append(line)

    def warn(self) -> list[str]:
        if self.lines:
            logger.warning("skipped %d bad records (data.bad_records=skip): %s%s", len(self.lines),
                           "; ".join(self.lines[:_SHOWN]), " ..." if len(self.lines) > _SHOWN else "")
        return self.lines


def _jsonl(files, *, text_key: str, key: str, bad_records: BadRecords) -> Documents:
    bad = BadRecordLog(bad_records, key)
    buffers, index, keys = [], [], []
    for number, (path, name) in enumerate(files):
        data = file_bytes(path)
        buffers.append(data)
        view = np.frombuffer(data, np.uint8)
        ends = np.append(np.flatnonzero(view == 10), len(view))
        starts = np.concatenate([[0], ends[:-1] + 1])
        good = []
        for line, (start, end) in enumerate(zip(starts.tolist(), ends.tolist()), start=1):
            if end > start and _jsonl_text(data[start:end], text_key, f"{path} line {line}", bad) is not None:
                good.append((number, start, end, line))
        if not good and not bad.lines:
            raise ConfigError([f"{key}: {path} holds no JSON lines"])
        index += good
        keys.append(record_keys(name, 0) if not good else
                    record_keys(name, good[-1][3])[[g[3] - 1 for g in good]])
    table = np.array([g[:3] for g in index], dtype=np.int64).reshape(-1, 3)

    def read(i: int) -> str:
        number, start, end = table[i]
        return json.loads(buffers[number][start:end])[text_key]
    return Documents(description=f"{len(table)} JSON lines in {len(files)} files", read=read,
                     keys=np.concatenate(keys) if keys else np.zeros(0, np.uint64),
                     bad_records=bad.warn())


def _jsonl_text(raw: bytes, text_key: str, where: str, bad: BadRecordLog) -> str | None:
    try:
        record = json.loads(raw)
    except ValueError as e:
        if not raw.strip():
            return None  # a blank line
        bad.add(where, f"not JSON ({str(e).splitlines()[0]})", "fix the line")
        return None
    text = record.get(text_key) if isinstance(record, dict) else None
    if not isinstance(text, str):
        keys = ", ".join(list(record)[:6]) if isinstance(record, dict) else type(record).__name__
        bad.add(where, f"no {text_key!r} string (it has: {keys})", "set data.text_key=<key>")
        return None
    return text


class _ArrowText:
    """Random access to the strings of an Arrow chunked array, kept in Arrow's memory."""

    def __init__(self, column):
        self.chunks = column.chunks
        self.starts = np.cumsum([0] + [len(c) for c in self.chunks])

    def __call__(self, i: int) -> str:
        chunk = int(np.searchsorted(self.starts, i, side="right")) - 1
        return self.chunks[chunk][i - self.starts[chunk]].as_py()


def _arrow_documents(columns: list, names: list[str], *, what: str, key: str,
                     bad_records: BadRecords) -> Documents:
    """Documents from one string column per file; null rows are bad records."""
    import pyarrow as pa
    import pyarrow.compute as pc

    bad = BadRecordLog(bad_records, key)
    kept, keys = [], []
    for column, name in zip(columns, names):
        valid = np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), bool)
        for row in np.flatnonzero(~valid)[:len(valid)]:
            bad.add(f"{name} row {row}", "no text (null)", "fill or drop the row")
        kept.append(column.filter(pa.array(valid)) if not valid.all() else column)
        keys.append(record_keys(name, len(valid))[valid])
    merged = pa.chunked_array([c for col in kept for c in col.chunks], type=pa.large_string())
    return Documents(description=what, read=_ArrowText(merged), bad_records=bad.warn(),
                     keys=np.concatenate(keys) if keys else np.zeros(0, np.uint64))


def _string_column(table, text_key: str, where: str, key: str):
    import pyarrow as pa

    if text_key not in table.column_names:
        raise ConfigError([f"{key}: {where} has no column {text_key!r} (it has: "
                           f"{', '.join(table.column_names[:8])}); set {key}.text_key=<column>"])
    column = table.column(text_key)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise ConfigError([f"{key}: {where} column {text_key!r} holds {column.type}, not text"])
    return column.cast(pa.large_string())


def _parquet(files, *, text_key: str, key: str, bad_records: BadRecords) -> Documents:
    import pyarrow.parquet as pq

    columns = []
    for path, _ in files:
        try:
            schema = pq.read_schema(path)
            table = pq.read_table(path, columns=[text_key] if text_key in schema.names else [])
        except Exception as e:  # noqa: BLE001 - pyarrow raises several types for bad files
            raise ConfigError([f"{key}: cannot read {path} as Parquet ({str(e).splitlines()[0]})"]) from None
        if text_key not in schema.names:
            table = schema.empty_table()
        columns.append(_string_column(table, text_key, str(path), key))
    return _arrow_documents(columns, [name for _, name in files], key=key, bad_records=bad_records,
                            what=f"{sum(len(c) for c in columns)} Parquet rows in {len(files)} files")


def _hf_disk(spec, *, key: str, bad_records: BadRecords) -> Documents:
    import datasets

    path = os.path.expanduser(spec.path)
    try:
        loaded = datasets.load_from_disk(path)
    except (FileNotFoundError, OSError, ValueError) as e:
        raise ConfigError([f"{key}.path={spec.path}: not a dataset saved with save_to_disk "
                           f"({str(e).splitlines()[0][:160]})"]) from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if spec.split is None and len(splits) != 1:
            raise ConfigError([f"{key}.path={spec.path} holds the splits {', '.join(splits)}: "
                               f"choose one with {key}.split=<name>"])
        name = spec.split or splits[0]
        if name not in loaded:
            raise ConfigError([f"{key}.split={name}: no such split (it has: {', '.join(splits)})"])
        loaded = loaded[name]
    column = _string_column(loaded.data.table, spec.text_key, spec.path, key)
    return _arrow_documents([column], [Path(path).name], key=key, bad_records=bad_records,
                            what=f"{len(column)} rows of the dataset at {path}")


def _tokens(files, *, tokenizer: Tokenizer, key: str) -> Documents:
    opened = []
    for path, _ in files:
        if path.suffix != ".bin":
            continue  # a glob over a shard directory also matches the .idx and .json files
        try:
            shard = shards.open_shard(path)
        except (ValueError, OSError) as e:
            raise ConfigError([f"{key}: {e}"]) from None
        problem = identity_problem(shard.record, tokenizer)
        if problem:
            raise ConfigError([f"{key}: {path}: {problem}"])
        opened.append((shard, os.path.relpath(path, files[0][0].parent)))
    if not opened:
        raise ConfigError([f"{key}.paths: no .bin token shard among the {len(files)} files matched"])
    starts = np.cumsum([0] + [len(s) for s, _ in opened])

    def read(i: int) -> np.ndarray:
        n = int(np.searchsorted(starts, i, side="right")) - 1
        return opened[n][0][i - starts[n]]

    def read_tokens(i: int, start: int, stop: int) -> np.ndarray:
        n = int(np.searchsorted(starts, i, side="right")) - 1
        return opened[n][0].tokens_of(i - starts[n], start, stop)
    tokens = sum(s.record["num_tokens"] for s, _ in opened)
    return Documents(description=f"{tokens:,} tokens in {len(opened)} shards", read=read,
                     # The keys of the documents the shards were made from: the same split as the source.
                     keys=np.concatenate([np.asarray(s.keys, np.uint64) if s.keys is not None
                                          else record_keys(name, len(s)) for s, name in opened]),
                     token_counts=np.concatenate([np.diff(s.offsets).astype(np.int64) for s, _ in opened]),
                     read_tokens=read_tokens,
                     recorded_bytes_per_token=sum(s.record["num_bytes"] for s, _ in opened) / max(tokens, 1))

