"""Evaluation of a loaded model: loss per token, bits per byte, perplexity.

On a data config's held-out batches (by default the very batches the training-time eval
uses: the data loader's), or on a file cut into non-overlapping windows of data.seq_len
tokens. Results are added to `eval.json` in the checkpoint's directory, keyed by what was
evaluated.
"""

import dataclasses
import json
import math
from pathlib import Path
from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding

from hydralearn.compose.build import abstract_params
from hydralearn.compose.mesh import batch_sharding
from hydralearn.config.run_dir import EVAL_RESULTS
from hydralearn.data.loader import open_loader
from hydralearn.layers.loss import token_losses
from hydralearn.runtime.load import LoadedModel


@dataclasses.dataclass(frozen=True)
class Evaluation:
    data: str  # what was evaluated
    loss: float  # mean cross-entropy, nats per token
    bits_per_byte: float  # total bits / bytes of text the evaluated tokens stand for
    perplexity: float
    tokens: int
    bytes: int


@dataclasses.dataclass(frozen=True)
class Window:
    inputs: np.ndarray  # (B, T) int32
    targets: np.ndarray  # (B, T) int32
    mask: np.ndarray  # (B, T) bool: which targets count
    segment_ids: np.ndarray | None = None  # (B, T) int32 with positions, for packed documents
    positions: np.ndarray | None = None


def on_heldout(model: LoadedModel, *, batches: int) -> Evaluation:
    """The first `batches` held-out batches of the model's data config (the training-time eval
    takes trainer.eval_batches of them)."""
    data = model.config.data
    loader = open_loader(data)
    try:
        windows = [Window(b.inputs, b.targets, b.mask, b.segment_ids, b.positions)
                   for b in loader.heldout(batches)]
    finally:
        loader.close()
    what = f"held-out {data.source.value}: {batches} batches of {data.batch_size} x {data.seq_len}"
    return evaluate(model, windows, data=what)


def on_file(model: LoadedModel, path: Path) -> Evaluation:
    """The file's tokens in windows of data.seq_len, each target predicted from its window."""
    tokens = np.asarray(model.codec.encode_bytes(path.read_bytes()), np.int32)
    if len(tokens) < 2:
        raise ValueError(f"{path}: needs at least two tokens to predict one")
    length, rows = model.config.data.seq_len, model.config.data.batch_size
    count = math.ceil((len(tokens) - 1) / length)
    inputs, targets = np.zeros((2, count * length), np.int32)
    inputs[:len(tokens) - 1], targets[:len(tokens) - 1] = tokens[:-1], tokens[1:]
    mask = np.arange(count * length) < len(tokens) - 1
    shape = (-1, length)
    windows = [Window(inputs.reshape(shape)[i:i + rows], targets.reshape(shape)[i:i + rows],
                      mask.reshape(shape)[i:i + rows]) for i in range(0, count, rows)]
    return evaluate(model, windows, data=f"file {path.resolve()}")


def evaluate(model: LoadedModel, windows: Iterable[Window], *, data: str) -> Evaluation:
    config = model.config
    graphdef, _ = abstract_params(config, mesh=model.mesh)
    sharding = batch_sharding(model.mesh, config.sharding)
    rows = config.data.batch_size  # every batch padded to this: one compiled shape

    @jax.jit
    def total_loss(params, inputs, targets, mask, segments):
        logits = nnx.merge(graphdef, params)(inputs, **segments).logits
        return jnp.sum(jnp.where(mask, token_losses(logits, targets), 0.0))

    nats, tokens, num_bytes = 0.0, 0, 0
    for w in windows:
        padded = [_pad_rows(x, rows, sharding) for x in (w.inputs, w.targets, w.mask)]
        segments = {} if w.segment_ids is None else {
            "segment_ids": _pad_rows(w.segment_ids, rows, sharding),
            "positions": _pad_rows(w.positions, rows, sharding)}
        nats += float(total_loss(model.params, *padded, segments))
        tokens += int(w.mask.sum())
        num_bytes += model.codec.byte_count(w.targets[w.mask])
    loss = nats / tokens
    return Evaluation(data=data, loss=loss, bits_per_byte=nats / math.log(2) / num_bytes,
                      perplexity=math.exp(loss), tokens=tokens, bytes=num_bytes)


def _pad_rows(x: np.ndarray, rows: int, sharding: NamedSharding) -> jax.Array:
    """(b, T) -> (rows, T), extra rows zero (masked out), placed like a training batch."""
    return jax.device_put(np.pad(x, ((0, rows - len(x)), (0, 0))), sharding)


def record(model: LoadedModel, evaluation: Evaluation) -> Path:
    """Add the result to eval.json in the checkpoint's directory (other entries are kept)."""
    path = model.results_dir / EVAL_RESULTS
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[evaluation.data] = {**dataclasses.asdict(evaluation), "step": model.step}
    tmp = path.with_name(".eval.json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)
    return path
