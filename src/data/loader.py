"""Batches from documents through Grain: shard, shuffle, tokenize, pack, batch, prefetch.

Packing makes rows of `seq_len` tokens:

- concat: the documents joined (each `[BOS] + tokens + [EOS]`) and cut into consecutive
  windows of seq_len + 1 tokens: inputs = window[:-1], targets = window[1:];
- segments: documents placed whole into rows (first fit; a document longer than a row is cut
  into row-sized pieces), padded, with segment ids (0 = padding) and positions restarting at
  0 in each document; the model's attention and loss stay inside each segment.

The order, per source, depends on what is known before tokenizing:

- windows (concat packing, when every document's token count is known without tokenizing:
  token shards record them, the byte tokenizer's is the UTF-8 length): the windows of the
  joined training documents are shuffled globally (as Levanter does), reshuffled every
  epoch; this JAX process takes every `process_count`-th window. A batch's rows, and a short
  run's tokens, come from across the whole corpus. Held-out batches are windows evenly
  spaced over the joined held-out documents.
- documents (otherwise, and for segments): this process's documents (every
  `process_count`-th) are shuffled globally and reshuffled every epoch, tokenized in Grain's
  reader threads, then packed in that order (as MaxText does); long documents give runs of
  rows from one document (tokenize first with hydralearn-tokenize for the windows order).
  Held-out batches are the first of the held-out documents, in a fixed shuffled order.

A mixture draws documents or windows from its components by weight. The iterator's state
(`get_state`) is JSON, saved in every checkpoint; `set_state` resumes exactly there.
"""

import dataclasses
import math
import grain
import numpy as np
from grain.experimental import (FirstFitPackIterDataset, FlatMapIterDataset, FlatMapTransform,
                                ThreadPrefetchIterDataset)

from hydralearn.data import pipeline
from hydralearn.data.chat import Example
from hydralearn.data.config import DataConfig, Packing, Source, SyntheticData
from hydralearn.data.corpus import Corpus, unigram_cross_entropy
from hydralearn.data.inputs import Inputs, open_inputs
from hydralearn.data.packing import ConcatWindows, StreamWindows
from hydralearn.data.sources import Documents
from hydralearn.data.tokenizer import BYTE, Tokenizer
from hydralearn.data.tokenizer_config import TokenizerKind
from hydralearn.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class HostBatch:
    """This process's rows of one global batch, as numpy arrays (B_local, T)."""

    inputs: np.ndarray  # int32
    targets: np.ndarray  # int32
    component: np.ndarray  # int8: 1 + the mixture component of each target, 0 for padding
    segment_ids: np.ndarray | None = None  # int32, 0 = padding (packing=segments only)
    positions: np.ndarray | None = None  # int32, restarting at each document

    @property
    def mask(self) -> np.ndarray:
        return self.component > 0


# Target id of a token that is context, not a target (data=chat): the loss leaves it out
# (layers/loss.py), as it does padding.
IGNORED = -1


class _Tokenize:
    """Document (text, token array, or a chat Example) -> {"tokens", "component"}, component
    being 0 for tokens that are no target; runs in reader threads."""

    def __init__(self, inputs: Inputs, component: int):
        self.tokenizer, self.component = inputs.tokenizer, component
        self.bytes = inputs.tokenizer.kind is TokenizerKind.byte and inputs.tokenizer.bos_id is None

    def __call__(self, document) -> dict[str, np.ndarray]:
        if isinstance(document, Example):
            return {"tokens": document.tokens,
                    "component": np.where(document.targets, self.component + 1, 0).astype(np.int8)}
        return self.element(self.tokens(document))

    def element(self, tokens: np.ndarray) -> dict[str, np.ndarray]:
        return {"tokens": tokens, "component": np.full(len(tokens), self.component + 1, np.int8)}

    def tokens(self, document) -> np.ndarray:
        if isinstance(document, np.ndarray):
            return document
        if self.bytes:  # the same ids as tokenizer.document, without a list of Python ints
            return np.append(np.frombuffer(document.encode("utf-8"), np.uint8).astype(np.int32),
                             np.int32(self.tokenizer.eos_id))
        return np.asarray(self.tokenizer.document(document), np.int32)


class _Pieces(FlatMapTransform):
    """A document -> (inputs, targets) pieces of at most `length` targets each."""

    max_fan_out = 1 << 20

    def __init__(self, length: int):
        self.length = length

    def flat_map(self, element):
        tokens, component, last = element["tokens"], element["component"], len(element["tokens"]) - 1
        pieces = []
        for start in range(0, last, self.length):
            end = min(start + self.length, last)  # inputs [start, end), targets one further
            pieces.append({"inputs": tokens[start:end], "targets": tokens[start + 1:end + 1],
                           "component": component[start + 1:end + 1]})
        return pieces


def _documents(source, indices: np.ndarray, *, inputs: Inputs, component: int,
               process: tuple[int, int]) -> grain.MapDataset:
    index, count = process
    return grain.MapDataset.source(indices)[index::count].map(lambda i: source[i]) \
        .map(_Tokenize(inputs, component))


def _pack(ds: grain.IterDataset, config: DataConfig, *, local_batch: int, seed: int) -> grain.IterDataset:
    length = config.seq_len
    if config.packing is Packing.concat:
        ds = ConcatWindows(ds, length=length + 1)
        ds = ds.batch(local_batch, drop_remainder=True).map(_concat_batch)
    else:
        ds = FlatMapIterDataset(ds, _Pieces(length))
        ds = FirstFitPackIterDataset(ds, length_struct={k: length for k in ("inputs", "targets", "component")},
                                     num_packing_bins=local_batch, seed=seed)
        ds = ds.batch(local_batch, drop_remainder=True).map(_segments_batch)
    return ds.map(_ignore_context) if config.source is Source.chat else ds


def _ignore_context(batch: HostBatch) -> HostBatch:
    """Targets that are context or padding -> IGNORED: the mask goes to the loss with the targets."""
    return dataclasses.replace(batch, targets=np.where(batch.mask, batch.targets, IGNORED).astype(np.int32))


def _concat_batch(batch: dict) -> HostBatch:
    tokens = batch["tokens"].astype(np.int32)
    return HostBatch(inputs=tokens[:, :-1], targets=tokens[:, 1:], component=batch["component"][:, 1:])


def _segments_batch(batch: dict) -> HostBatch:
    return HostBatch(inputs=batch["inputs"].astype(np.int32), targets=batch["targets"].astype(np.int32),
                     component=batch["component"].astype(np.int8),
                     segment_ids=batch["inputs_segment_ids"].astype(np.int32),
                     positions=batch["inputs_positions"].astype(np.int32))


def local_batch_size(config: DataConfig, process_count: int) -> int:
    if config.batch_size % process_count:
        raise ValueError(f"data.batch_size={config.batch_size} must be divisible by the "
                         f"{process_count} processes")
    return config.batch_size // process_count


@dataclasses.dataclass(frozen=True)
class Counts:
    """Token counts (BOS/EOS included) of one split's train and held-out documents."""
    train: np.ndarray
    heldout: np.ndarray


def token_counts(inputs: Inputs, config: DataConfig, *, processes: int = 1) -> list[Counts] | None:
    """Every split's counts when all are known without tokenizing and packing is concat (the
    windows order); None for the documents order, also taken when a split is too short for
    that (fewer training windows than processes, or no held-out window): it repeats documents."""
    if config.packing is not Packing.concat or config.source is Source.chat:
        return None  # a conversation's length is known once it is rendered
    out, window = [], config.seq_len + 1
    for split in inputs.splits:
        train = _counts(split.documents, split.train, inputs.tokenizer)
        heldout = _counts(split.heldout_source, split.heldout, inputs.tokenizer)
        if train is None or heldout is None or train.sum() < processes * window or heldout.sum() < window:
            return None
        out.append(Counts(train=train, heldout=heldout))
    return out


def _counts(documents: Documents, indices: np.ndarray, tokenizer: Tokenizer) -> np.ndarray | None:
    if documents.token_counts is not None:
        return documents.token_counts[indices]
    if tokenizer.kind is not TokenizerKind.byte:
        return None
    specials = len(tokenizer.wrap([]))
    return np.fromiter((len(documents[i].encode("utf-8")) + specials for i in indices), np.int64,
                       count=len(indices))


def _windows(source: Documents, indices: np.ndarray, counts: np.ndarray, *, inputs: Inputs,
             component: int, length: int) -> grain.MapDataset:
    tokenize = _Tokenize(inputs, component)

    def piece(document: int, start: int, stop: int) -> dict[str, np.ndarray]:
        index = int(indices[document])
        if source.read_tokens is not None:  # token shards: only the slice is read
            tokens = source.read_tokens(index, start, stop)
        else:
            tokens = tokenize.tokens(source[index])
            if len(tokens) != counts[document]:  # its file changed under the running job
                raise ConfigError([f"data: document {index} of {source.description} now has "
                                   f"{len(tokens)} tokens, not the {counts[document]} counted when "
                                   "the run opened its data; keep the files unchanged while training, "
                                   "then run the same command to resume"])
            tokens = tokens[start:stop]
        return tokenize.element(tokens)
    return grain.MapDataset.source(StreamWindows(piece, counts=counts, length=length))


def _mix(parts: list, inputs: Inputs):
    return parts[0] if len(parts) == 1 else grain.MapDataset.mix(parts, weights=list(inputs.weights))


def train_dataset(config: DataConfig, inputs: Inputs, *, process: tuple[int, int] = (0, 1),
                  counts: list[Counts] | None = None) -> grain.IterDataset:
    """The endless training batches (HostBatch) of process `process` = (index, count);
    `counts` (from `token_counts`) selects the windows order."""
    index, count = process
    seeds = [(config.seed + 7919 * c) % 2**32 for c in range(len(inputs.splits))]
    if counts is not None:
        parts = [_windows(s.documents, s.train, n.train, inputs=inputs, component=c,
                          length=config.seq_len + 1)[index::count].shuffle(seed=seed).repeat(None)
                 for c, (s, n, seed) in enumerate(zip(inputs.splits, counts, seeds))]
    else:
        parts = [_documents(s.documents, s.train, inputs=inputs, component=c, process=process)
                 .shuffle(seed=seed).repeat(None) for c, (s, seed) in enumerate(zip(inputs.splits, seeds))]
    ds = _mix(parts, inputs).to_iter_dataset(grain.ReadOptions(
        num_threads=config.read_threads, prefetch_buffer_size=max(config.read_threads * 16, 1)))
    local = local_batch_size(config, count)
    if counts is not None:
        ds = ds.batch(local, drop_remainder=True).map(_concat_batch)
    else:
        ds = _pack(ds, config, local_batch=local, seed=config.seed)
    return ThreadPrefetchIterDataset(ds, prefetch_buffer_size=config.prefetch_batches)


def heldout_batches(config: DataConfig, inputs: Inputs, *, count: int, process: tuple[int, int] = (0, 1),
                    counts: list[Counts] | None = None) -> list[HostBatch]:
    """`count` held-out batches: windows evenly spaced over the held-out documents (windows
    order; the same rows whatever the process count), or the first batches of this process's
    held-out documents in a fixed shuffled order (documents order; repeated if short)."""
    local = local_batch_size(config, process[1])
    if counts is not None:
        windows = _mix([_windows(s.heldout_source, s.heldout, n.heldout, inputs=inputs, component=c,
                                 length=config.seq_len + 1)
                        for c, (s, n) in enumerate(zip(inputs.splits, counts))], inputs)
        chosen = np.linspace(0, len(windows) - 1, count * config.batch_size).round().astype(np.int64)
        out = []
        for b in range(count):
            rows = chosen[b * config.batch_size + process[0] * local:][:local]
            elements = [windows[int(i)] for i in rows]
            out.append(_concat_batch({k: np.stack([e[k] for e in elements]) for k in elements[0]}))
        return out
    parts = [_documents(s.heldout_source, s.heldout, inputs=inputs, component=c, process=process)
             .shuffle(seed=config.seed).repeat(None) for c, s in enumerate(inputs.splits)]
    ds = _pack(_mix(parts, inputs).to_iter_dataset(grain.ReadOptions(num_threads=0)), config,
               local_batch=local, seed=config.seed)
    iterator = iter(ds)
    return [next(iterator) for _ in range(count)]


def tokens_per_byte(inputs: Inputs, *, max_documents: int = 256) -> float:
    """Tokens (BOS/EOS included) per UTF-8 byte of held-out text, for bits per byte: counted on
    up to `max_documents` documents per source, or as recorded by token shards."""
    tokens = nbytes = 0.0
    for split, weight in zip(inputs.splits, inputs.weights):
        source = split.heldout_source
        if source.recorded_bytes_per_token:
            tokens += weight
            nbytes += weight * source.recorded_bytes_per_token
            continue
        texts = [source[i] for i in split.heldout[:max_documents]]
        if texts and isinstance(texts[0], Example):  # chat: per target token, of the targets' text
            count = sum(int(t.targets.sum()) for t in texts)
            size = sum(len(inputs.tokenizer.decode(t.tokens[t.targets]).encode("utf-8")) for t in texts)
        else:
            count = sum(len(inputs.tokenizer.document(t)) for t in texts)
            size = sum(len(t.encode("utf-8")) for t in texts)
        tokens += weight
        nbytes += weight * size / max(count, 1)
    return tokens / nbytes if nbytes else math.nan


def batch_stats(batch: HostBatch, names: tuple[str, ...]) -> dict[str, float]:
    """Padding share, and with several components each one's share of the target tokens."""
    counts = np.bincount(batch.component.ravel(), minlength=len(names) + 1)
    total = counts.sum()
    out = {"padding_share": counts[0] / total}
    if len(names) > 1:
        real = max(total - counts[0], 1)
        out |= {f"share_{name}": counts[i + 1] / real for i, name in enumerate(names)}
    return out


def synthetic_dataset(config: SyntheticData, corpus: Corpus, *, process: tuple[int, int]) -> grain.IterDataset:
    """data=synthetic: batch `step` is a pure function of (seed, step); the state is the step."""
    local = local_batch_size(config, process[1])
    rows = slice(process[0] * local, (process[0] + 1) * local)

    def at(step: int) -> HostBatch:
        batch = pipeline.train_batch(config, corpus, step)
        return HostBatch(inputs=batch.inputs[rows], targets=batch.targets[rows],
                         component=np.ones_like(batch.targets[rows], np.int8))
    ds = grain.MapDataset.range(1 << 62).map(at).to_iter_dataset(grain.ReadOptions(num_threads=0))
    return ThreadPrefetchIterDataset(ds, prefetch_buffer_size=config.prefetch_batches)


class Loader:
    """What the trainer reads: this process's batches (an iterator whose JSON state is saved
    in every checkpoint), held-out batches, per-batch statistics, the tokenizer."""

    def __init__(self, config: DataConfig, *, inputs: Inputs | None = None,
                 process: tuple[int, int] = (0, 1)):
        """`inputs`: opened by `open_inputs(config)` (every source but synthetic)."""
        self.config, self.inputs, self.process = config, inputs, process
        if config.source is Source.synthetic:
            self.corpus = pipeline.load_corpus(config)
            self.tokenizer, self.names, self.order = BYTE, ("synthetic",), "synthetic"
            self.description = self.corpus.description
            self._dataset = synthetic_dataset(config, self.corpus, process=process)
        else:
            self.tokenizer, self.names = inputs.tokenizer, inputs.names
            self.counts = token_counts(inputs, config, processes=process[1])
            self.order = "documents" if self.counts is None else "windows"
            self.description = f"{inputs.description}; {self.order} shuffled"
            self._dataset = train_dataset(config, inputs, process=process, counts=self.counts)
        self._iterator = iter(self._dataset)

    def __next__(self) -> HostBatch:
        return next(self._iterator)

    def get_state(self) -> dict:
        """This process's position: JSON, saved with every checkpoint."""
        return self._iterator.get_state()

    def set_state(self, state: dict) -> None:
        try:
            self._iterator.set_state(state)
        except (KeyError, TypeError, IndexError, ValueError):  # a position of another pipeline
            raise ConfigError([f"the checkpoint's data position was written for another data "
                               f"order than this run's ({self.order} order, {self.description}); "
                               "set name=<new name> for a new run"]) from None

    @property
    def bad_records(self) -> int:
        return 0 if self.inputs is None else self.inputs.bad_records

    def heldout(self, count: int) -> list[HostBatch]:
        if self.inputs is None:
            local = local_batch_size(self.config, self.process[1])
            rows = slice(self.process[0] * local, (self.process[0] + 1) * local)
            return [HostBatch(inputs=b.inputs[rows], targets=b.targets[rows],
                              component=np.ones_like(b.targets[rows], np.int8))
                    for b in pipeline.heldout_batches(self.config, self.corpus, count)]
        return heldout_batches(self.config, self.inputs, count=count, process=self.process,
                               counts=self.counts)

    def stats(self, batch: HostBatch) -> dict[str, float]:
        return batch_stats(batch, self.names)

    def tokens_per_byte(self) -> float:
        """Bits per byte = eval loss (nats per token) * this / ln 2. Synthetic tokens are bytes."""
        return 1.0 if self.inputs is None else tokens_per_byte(self.inputs)

    def unigram_loss(self, heldout: list[HostBatch], *, train_batches: int = 16) -> float:
        """Held-out loss of the token-frequency model of `train_batches` fresh training batches."""
        if self.inputs is None:
            return unigram_cross_entropy(self.corpus.train, self.corpus.heldout)
        fresh = iter(train_dataset(self.config, self.inputs, process=self.process, counts=self.counts))
        train = [next(fresh) for _ in range(train_batches)]
        fresh.close()
        vocab = self.tokenizer.vocab_size
        return unigram_cross_entropy(np.concatenate([b.targets[b.mask] for b in train]),
                                     np.concatenate([b.targets[b.mask] for b in heldout]), vocab)

    def close(self) -> None:
        self._iterator.close()


def open_loader(config: DataConfig, *, process: tuple[int, int] = (0, 1)) -> Loader:
    """A loader with its sources opened (what a run does in two steps: open before JAX work)."""
    inputs = None if config.source is Source.synthetic else open_inputs(config)
    return Loader(config, inputs=inputs, process=process)


def first_batches(config: DataConfig, count: int) -> list[HostBatch]:
    """The first `count` training batches of a one-process run (benchmarks)."""
    loader = open_loader(config)
    try:
        return [next(loader) for _ in range(count)]
    finally:
        loader.close()
