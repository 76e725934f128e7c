"""Generation with a KV cache: one prefill over the prompts, then one step per new token.

    generator = Generator(config, params, mesh=mesh)
    for tokens in generator.stream(prompts, max_new_tokens=64, sampling=Sampling(), chunk=1):
        ...  # (B, chunk) new token ids per call, -1 where a row has stopped

Prompts of different lengths share one batch: each row's positions start at 0 and its cache
slots follow its positions (see layers/kv_cache.py), so no row attends to another's padding.
Prompt and cache lengths are rounded up to buckets, so new lengths rarely recompile. Decode
steps run `chunk` at a time inside one jitted `lax.while_loop` (sampling included, the cache
donated and updated in place), which stops early once every row has produced one of `eos_ids`.
The cache is laid out on the model's mesh by the sharding rules (logical axes CACHE_AXES).
MoE layers route as their config's `for_generation()` says (dropless: layers/ffn/moe_config.py).
"""

import dataclasses
import math
from typing import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding

from hydralearn.compose.build import abstract_params
from hydralearn.config.schema import TrainConfig
from hydralearn.compose.sharding import logical_to_spec
from hydralearn.layers.decoder import unstacked_blocks
from hydralearn.layers.kv_cache import CACHE_AXES, KVCache, Step
from hydralearn.runtime.sampling import Sampling
from hydralearn.runtime.text import Codec

STOPPED = -1  # the token id reported for a row that has already stopped


def choose(logits: jax.Array, key: jax.Array, sampling: Sampling) -> jax.Array:
    """Next tokens (B,) int32 from float32 logits (B, V)."""
    if sampling.temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits / sampling.temperature
    if sampling.top_k:
        kth = jax.lax.top_k(logits, min(sampling.top_k, logits.shape[-1]))[0][:, -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if sampling.top_p < 1:
        ordered = jnp.sort(logits, axis=-1)[:, ::-1]
        probs = jax.nn.softmax(ordered, axis=-1)
        # A token is kept if the more likely ones alone do not reach top_p: the first always is.
        kept = jnp.cumsum(probs, axis=-1) - probs < sampling.top_p
        threshold = jnp.min(jnp.where(kept, ordered, jnp.inf), axis=-1, keepdims=True)
        logits = jnp.where(logits < threshold, -jnp.inf, logits)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


def bucket(length: int) -> int:
    """Lengths rounded up so that a few compiled shapes serve every prompt: powers of two
    (at least 16) up to 128, then multiples of 128."""
    if length <= 128:
        return max(16, 1 << (length - 1).bit_length())
    return math.ceil(length / 128) * 128


def generation_config(config: TrainConfig) -> TrainConfig:
    """The model as generation runs it: each ffn option's `for_generation()` hook applied."""
    ffn = config.model.ffn
    ffn = getattr(ffn, "for_generation", lambda: ffn)()
    return dataclasses.replace(config, model=dataclasses.replace(config.model, ffn=ffn))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DecodeState:
    cache: KVCache
    token: jax.Array  # (B,) int32: each row's newest token, not yet in the cache
    position: jax.Array  # (B,) int32: its position
    done: jax.Array  # (B,) bool: the row has produced eos
    count: jax.Array  # () int32: tokens generated so far (the sampling key of the next is fold_in(count))


class Generator:
    """A model's parameters on its mesh, with jitted prefill and decode steps."""

    def __init__(self, config: TrainConfig, params: nnx.State, *, mesh: Mesh,
                 graphdef: nnx.GraphDef | None = None):
        """`graphdef`: the training program's, for `config` on `mesh`; reused when generation
        runs the model unchanged (no ffn's `for_generation` hook changes it)."""
        trained, config = config, generation_config(config)
        self.model, self.params, self.mesh = config.model, params, mesh
        if graphdef is None or config != trained:
            graphdef, _ = abstract_params(config, mesh=mesh)
        self.graphdef = graphdef
        # On CPU decoding reads the weights from per-layer copies (block weights held twice):
        # 2.6x faster one-token steps measured (100M Llama); see Decoder.extend.
        self.blocks = unstacked_blocks(params) if mesh.devices.flat[0].platform == "cpu" else None
        rules = config.sharding
        self.batch_shards = math.prod(mesh.shape[a] for a in rules.mesh_axes("batch") if a in mesh.shape)
        self.batch_sharding = NamedSharding(mesh, logical_to_spec(("batch", None), rules))
        self.row_sharding = NamedSharding(mesh, logical_to_spec(("batch",), rules))
        self.cache_sharding = NamedSharding(mesh, logical_to_spec(CACHE_AXES, rules))
        self._prefill = jax.jit(self._prefill_fn, static_argnames=("cache_length", "sampling", "eos_ids"))
        self._decode = jax.jit(self._decode_fn, donate_argnums=2,
                               static_argnames=("chunk", "sampling", "eos_ids"))

    def stream(self, prompts: list[list[int]], *, max_new_tokens: int, sampling: Sampling,
               eos_ids: tuple[int, ...] = (), chunk: int | None = None) -> Iterator[np.ndarray]:
        """New tokens of every prompt, (len(prompts), n) per item: first the prefill's one
        token, then up to `chunk` (default: all the rest) per item; STOPPED after a row's eos.
        Ends after max_new_tokens tokens, or once every row has produced one of eos_ids."""
        state, first = self.prefill(prompts, max_new_tokens=max_new_tokens, sampling=sampling,
                                    eos_ids=eos_ids)
        rows, key = len(prompts), jax.random.key(sampling.seed)
        yield np.asarray(first)[:rows, None]
        left, chunk = max_new_tokens - 1, chunk or max(max_new_tokens - 1, 1)
        while left > 0 and not bool(np.all(np.asarray(state.done))):
            steps = min(chunk, left)
            state, out = self._decode(self.params, self.blocks, state, key, jnp.int32(steps),
                                      chunk=chunk, sampling=_compiled(sampling), eos_ids=eos_ids)
            left -= steps
            yield np.asarray(out)[:rows, :steps]

    def prefill(self, prompts: list[list[int]], *, max_new_tokens: int, sampling: Sampling,
                eos_ids: tuple[int, ...] = ()) -> tuple[DecodeState, jax.Array]:
        """The prompts through the model into a new cache with room for max_new_tokens more;
        (decode state, first new token of each row (B,)). B: rows padded for the batch shards."""
        tokens, lengths, live = self._batch(prompts)
        cache_length = bucket(max(len(p) for p in prompts) + max_new_tokens)
        return self._prefill(self.params, tokens, lengths, live, jax.random.key(sampling.seed),
                             cache_length=cache_length, sampling=_compiled(sampling), eos_ids=eos_ids)

    def generate(self, prompts: list[list[int]], **options) -> list[list[int]]:
        """Every prompt's new tokens (up to and including eos), as `stream` gives them."""
        rows = [[] for _ in prompts]
        for new in self.stream(prompts, **options):
            for row, tokens in zip(rows, new):
                row.extend(int(t) for t in tokens if t != STOPPED)
        return rows

    def _batch(self, prompts: list[list[int]]) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Prompts right-padded to a bucketed length, rows padded to a multiple of the batch
        shards with stopped one-token rows: (tokens (B, P), lengths (B,), live (B,) bool)."""
        if not prompts or min(len(p) for p in prompts) == 0:
            raise ValueError("every prompt needs at least one token")
        rows = math.ceil(len(prompts) / self.batch_shards) * self.batch_shards
        lengths = np.ones(rows, np.int32)
        lengths[:len(prompts)] = [len(p) for p in prompts]
        tokens = np.zeros((rows, bucket(int(lengths.max()))), np.int32)
        for row, prompt in enumerate(prompts):
            tokens[row, :len(prompt)] = prompt
        live = np.arange(rows) < len(prompts)
        return (jax.device_put(tokens, self.batch_sharding), jax.device_put(lengths, self.row_sharding),
                jax.device_put(live, self.row_sharding))

    def _prefill_fn(self, params, tokens, lengths, live, key, *, cache_length: int,
                    sampling: Sampling, eos_ids: tuple[int, ...]) -> tuple[DecodeState, jax.Array]:
        model = nnx.merge(self.graphdef, params)
        batch, length = tokens.shape
        m = self.model
        cache = KVCache.zeros(num_layers=m.num_layers, batch=batch, length=cache_length,
                              num_kv_heads=m.num_kv_heads, head_dim=m.resolved_head_dim,
                              dtype=m.compute_dtype)
        cache = jax.lax.with_sharding_constraint(cache, self.cache_sharding)
        positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch, length))
        logits, cache = model.extend(tokens, positions, cache, Step.prefill, logits_at=lengths - 1)
        first = choose(logits, jax.random.fold_in(key, 0), sampling)
        done = _is_eos(first, eos_ids) | ~live
        state = DecodeState(cache=cache, token=first, position=lengths, done=done, count=jnp.int32(1))
        return state, first

    def _decode_fn(self, params, blocks, state: DecodeState, key, steps, *, chunk: int,
                   sampling: Sampling, eos_ids: tuple[int, ...]) -> tuple[DecodeState, jax.Array]:
        """Up to `steps` (<= chunk) decode steps; (state, new tokens (B, chunk))."""
        model = nnx.merge(self.graphdef, params)
        at_zero = jnp.zeros_like(state.position)

        def step(carry):
            state, out, i = carry
            logits, cache = model.extend(state.token[:, None], state.position[:, None], state.cache,
                                         Step.decode, logits_at=at_zero, blocks=blocks)
            token = choose(logits, jax.random.fold_in(key, state.count), sampling)
            out = out.at[:, i].set(jnp.where(state.done, STOPPED, token))
            state = DecodeState(cache=cache, token=token, position=state.position + 1,
                                done=state.done | _is_eos(token, eos_ids), count=state.count + 1)
            return state, out, i + 1

        def more(carry):
            state, _, i = carry
            return (i < steps) & ~jnp.all(state.done)

        out = jnp.full((state.token.shape[0], chunk), STOPPED, jnp.int32)
        state, out, _ = jax.lax.while_loop(more, step, (state, out, jnp.int32(0)))
        return state, out


def _compiled(sampling: Sampling) -> Sampling:
    """What the jitted steps are specialised on: the seed only makes the key they are given."""
    return dataclasses.replace(sampling, seed=0)


def _is_eos(tokens: jax.Array, eos_ids: tuple[int, ...]) -> jax.Array:
    return jnp.isin(tokens, jnp.asarray(eos_ids, jnp.int32)) if eos_ids else jnp.zeros(tokens.shape, bool)


def complete(generator: Generator, codec: Codec, prompts: list[str], *, max_new_tokens: int,
             sampling: Sampling, stop: tuple[str, ...] = (),
             on_text: Callable[[str], None] | None = None) -> list[str]:
    """Text completions of text prompts, each ended at eos, before its first stop string, or
    after max_new_tokens tokens. `on_text` (for one prompt) receives the text as it grows."""
    rows: list[list[int]] = [[] for _ in prompts]
    texts, ended = [""] * len(prompts), [False] * len(prompts)
    shown = 0
    chunk = 1 if on_text else 16 if stop else None  # stop strings are checked between chunks
    for new in generator.stream([codec.encode(p) for p in prompts], max_new_tokens=max_new_tokens,
                                sampling=sampling, eos_ids=codec.eos_ids, chunk=chunk):
        for i, tokens in enumerate(new):
            if ended[i]:
                continue
            for token in tokens.tolist():
                if token == STOPPED or token in codec.eos_ids:
                    ended[i] = True
                    break
                rows[i].append(token)
            texts[i] = codec.decode(rows[i])
            cut = min((texts[i].find(s) for s in stop if s in texts[i]), default=-1)
            if cut >= 0:
                texts[i], ended[i] = texts[i][:cut], True
        if on_text:
            end = len(texts[0]) if ended[0] else _printable(texts[0], stop)
            on_text(texts[0][shown:end])
            shown = max(shown, end)
        if all(ended):
            break
    if on_text:
        on_text(texts[0][shown:])
    return texts


def _printable(text: str, stop: tuple[str, ...]) -> int:
    """How much of a growing text is final: not a possible start of a stop string, and not a
    character still being decoded (a replacement character at the end)."""
    end = len(text.rstrip("\ufffd"))
    held = max((size for s in stop for size in range(1, min(len(s), end + 1))
                if text[:end].endswith(s[:size])), default=0)
    return end - held
