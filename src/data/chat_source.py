"""data=chat: records from JSON lines, Parquet or a saved `datasets` dataset, each checked when
the run opens its data, read lazily afterwards as Examples (tokens and targets, data/chat.py).

Opening renders every record once, so that every bad one is found before training starts,
named by file and line (or row): not JSON, no messages, an unknown role, no assistant turn,
a template that does not render it, no assistant token after rendering. With
data.bad_records=skip they are counted instead. Over-long conversations are cut or dropped
here too (data.overlong), so what a run trains on is fixed when it opens.
"""

import json
import logging
from pathlib import Path
from typing import Callable

import numpy as np

from hydralearn.data.chat import BadRecord, ChatEncoder, conversation
from hydralearn.data.chat_template import TemplateError
from hydralearn.data.check import expand
from hydralearn.data.config import ChatData
from hydralearn.data.sources import Documents, BadRecordLog, file_bytes, record_keys
from hydralearn.data.tokenizer import Tokenizer
from hydralearn.errors import ConfigError

logger = logging.getLogger(__name__)


class _Table:
    """One file's (or dataset's) records by index: `get(i)` -> the record (BadRecord if unreadable)."""

    def __init__(self, name: str, unit: str, count: int, get: Callable[[int], object]):
        self.name, self.unit, self.count, self.get = name, unit, count, get


def open_chat(spec: ChatData, *, key: str, tokenizer: Tokenizer, bad_records) -> Documents:
    encoder = ChatEncoder(spec, tokenizer, where=getattr(spec.tokenizer, "path", "byte"))
    tables = _tables(spec, key)
    bad = BadRecordLog(bad_records, key)
    kept, keys, dropped = [], [], 0
    for number, table in enumerate(tables):
        ok = np.zeros(table.count, bool)
        for i in range(table.count):
            try:
                record = table.get(i)
                if record is None:
                    continue  # a blank line
                messages = conversation(record, spec)
                start = encoder.start(messages)
                if start is None:
                    dropped += 1
                    continue
                if not encoder.example(messages, start).targets.any():
                    raise BadRecord("no token of it is a target after rendering (empty assistant turns?)")
            except (BadRecord, TemplateError) as e:
                bad.add(f"{table.name} {table.unit} {i + 1}", str(e), "fix the record")
                continue
            kept.append((number, i, start))
            ok[i] = True
        keys.append(record_keys(table.name, table.count)[ok])
    if dropped:
        logger.warning("%s: left out %d conversations longer than data.seq_len + 1 = %d tokens "
                       "(data.overlong=%s)", key, dropped, spec.seq_len + 1, spec.overlong.value)
    if not kept:
        raise ConfigError([f"{key}: no record to train on: {dropped} of them longer than "
                           f"data.seq_len + 1 = {spec.seq_len + 1} tokens (raise data.seq_len), "
                           f"{len(bad.lines)} bad"])
    index = np.array(kept, np.int64).reshape(-1, 3)

    def read(i: int):
        number, row, start = index[i]
        return encoder.example(conversation(tables[number].get(int(row)), spec), int(start))
    return Documents(description=f"{len(index)} {spec.format.value} records in {len(tables)} files"
                     + (f" ({dropped} too long, left out)" if dropped else ""),
                     keys=np.concatenate(keys) if keys else np.zeros(0, np.uint64), read=read,
                     bad_records=bad.warn())


def _tables(spec: ChatData, key: str) -> list[_Table]:
    if spec.path:
        return [_dataset(spec, key)]
    out = []
    for path, name in expand(spec.paths, key=f"{key}.paths"):
        if path.suffix == ".parquet":
            out.append(_parquet(path, name, key))
        else:
            out.append(_jsonl(path, name))
    return out


def _jsonl(path: Path, name: str) -> _Table:
    data = file_bytes(path)
    view = np.frombuffer(data, np.uint8)
    ends = np.append(np.flatnonzero(view == 10), len(view))
    starts = np.concatenate([[0], ends[:-1] + 1])

    def get(i: int):
        raw = data[int(starts[i]):int(ends[i])]
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            raise BadRecord(f"not JSON ({str(e).splitlines()[0]})") from None
    return _Table(name, "line", len(starts) - (1 if len(view) and view[-1] == 10 else 0), get)


def _rows(table, name: str) -> _Table:
    return _Table(name, "row", table.num_rows, lambda i: table.slice(i, 1).to_pylist()[0])


def _parquet(path: Path, name: str, key: str) -> _Table:
    import pyarrow.parquet as pq

    try:
        return _rows(pq.read_table(path), name)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for bad files
        raise ConfigError([f"{key}: cannot read {path} as Parquet ({str(e).splitlines()[0]})"]) from None


def _dataset(spec: ChatData, key: str) -> _Table:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(Path(spec.path).expanduser()))
    except (FileNotFoundError, OSError, ValueError) as e:
        raise ConfigError([f"{key}.path={spec.path}: not a dataset saved with save_to_disk "
                           f"({str(e).splitlines()[0][:160]})"]) from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if (spec.split or (splits[0] if len(splits) == 1 else None)) not in loaded:
            raise ConfigError([f"{key}.split={spec.split}: choose one of the dataset's splits "
                               f"({', '.join(splits)})"])
        loaded = loaded[spec.split or splits[0]]
    return _rows(loaded.data.table, Path(spec.path).name)
