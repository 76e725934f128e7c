"""A run's inputs, opened and checked before any JAX work: the tokenizer, and each source's
train and held-out documents.

Composition checks only what needs no reading (data/check.py); `open_inputs` is what a run
starts with: every file opened and every record checked, the held-out split made, every
problem a one-line ConfigError.
"""

import dataclasses

import numpy as np

from hydralearn.data.chat_source import open_chat
from hydralearn.data.check import components
from hydralearn.data.config import DataConfig, Source
from hydralearn.data.sources import Documents, open_source
from hydralearn.data.tokenizer import Tokenizer, load
from hydralearn.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Split:
    """Documents of one source, by index into `documents`."""

    documents: Documents
    train: np.ndarray  # (N,) int64
    heldout: np.ndarray  # (M,) int64; into `eval_documents` when explicit eval files are given
    eval_documents: Documents | None = None

    @property
    def heldout_source(self) -> Documents:
        return self.eval_documents or self.documents


@dataclasses.dataclass(frozen=True)
class Inputs:
    tokenizer: Tokenizer
    names: tuple[str, ...]  # component names (the source's name when it is not a mixture)
    weights: tuple[float, ...]  # normalized to sum to 1
    splits: tuple[Split, ...]

    @property
    def description(self) -> str:
        return "; ".join(f"{name}: {s.documents.description} ({len(s.train)} train / "
                         f"{len(s.heldout)} held-out documents)" for name, s in zip(self.names, self.splits))

    @property
    def bad_records(self) -> int:
        return sum(len(s.documents.bad_records) for s in self.splits)


def open_inputs(config: DataConfig) -> Inputs:
    """Every source opened, checked and split; ConfigError naming every problem."""
    tokenizer = load(config.tokenizer)
    names, weights, splits, problems = [], [], [], []
    for name, spec, key in components(config):
        try:
            splits.append(_split(config, spec, key=key, tokenizer=tokenizer))
        except ConfigError as e:
            problems += e.errors
            continue
        names.append(name)
        weights.append(getattr(spec, "weight", 1.0))
    if problems:
        raise ConfigError(problems)
    total = sum(weights)
    return Inputs(tokenizer=tokenizer, names=tuple(names), splits=tuple(splits),
                  weights=tuple(w / total for w in weights))


def _split(config: DataConfig, spec, *, key: str, tokenizer: Tokenizer) -> Split:
    opened = dict(key=key, tokenizer=tokenizer, bad_records=config.bad_records)
    documents = (open_chat if spec.source is Source.chat else open_source)(spec, **opened)
    if config.eval_paths:
        evaluated = open_source(spec, paths=config.eval_paths, **opened)
        split = Split(documents=documents, train=np.arange(len(documents)),
                      heldout=np.arange(len(evaluated)), eval_documents=evaluated)
    else:
        held = documents.keys % np.uint64(100) < np.uint64(config.heldout_percent)
        split = Split(documents=documents, train=np.flatnonzero(~held), heldout=np.flatnonzero(held))
    if not len(split.train):
        raise ConfigError([f"{key}: no training documents ({len(documents)} documents, all held "
                           f"out at data.heldout_percent={config.heldout_percent})"])
    if not len(split.heldout):
        raise ConfigError([f"{key}: no held-out documents among {len(documents)} (the split by "
                           f"data.heldout_percent={config.heldout_percent} kept none): raise it or "
                           "set data.eval_paths"])
    return split
