"""Decoder-only transformer LM: embedding, a scanned stack of blocks, final norm, LM head.

Its schema is decoder_config.py: it owns the dimensions its children share and hands them
down at build time; attention, position, ffn and norm are child configs (group options).
"""

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx

from hydralearn.layers.attention import AttentionFn
from hydralearn.layers.block import BlockSpec, TransformerBlock
from hydralearn.layers.decoder_config import DecoderConfig, ffn_pattern
from hydralearn.layers.embedding import Embedding
from hydralearn.layers.kv_cache import KVCache, Step
from hydralearn.layers.params import Numerics, ShardActivation, param, unsharded, use
from hydralearn.layers.registry import instantiate

BlockFn = Callable[..., Any]
HIDDEN_AXES = ("batch", "length", None)  # (B, T, d_model) between blocks: whole per device


@dataclasses.dataclass(frozen=True)
class DecoderOutput:
    logits: jax.Array  # (B, T, vocab), float32
    aux: dict  # auxiliary scalars from the blocks: `*_loss` summed over layers, others averaged


class Decoder(nnx.Module):
    def __init__(self, config: DecoderConfig, *, attention_fn: AttentionFn,
                 remat: Callable[[BlockFn], BlockFn] = lambda f: f,
                 shard: ShardActivation = unsharded, rngs: nnx.Rngs):
        c = config
        if c.compute_dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"model.compute_dtype={c.compute_dtype!r} must be resolved before building")
        numerics = Numerics(param_dtype=c.param_dtype, compute_dtype=c.compute_dtype,
                            init_std=c.init_std, out_std=c.init_std / (2 * c.num_layers) ** 0.5,
                            shard=shard)
        spec = BlockSpec(d_model=c.d_model, ffn_dim=c.ffn_dim, num_heads=c.num_heads,
                         num_kv_heads=c.num_kv_heads, head_dim=c.resolved_head_dim,
                         rope_theta=c.rope_theta, attention=c.attention, position=c.position,
                         ffn=c.ffn, norm=c.norm, numerics=numerics)
        self.dtype = c.compute_dtype
        self.remat = remat
        self.shard = shard
        self.embed = Embedding(vocab_size=c.vocab_size, d_model=c.d_model, numerics=numerics, rngs=rngs)

        # One scan step runs one repeat of the ffn's layer pattern (e.g. MoE every n-th layer:
        # n-1 dense blocks then one MoE block), so differing layers still share one scan.
        pattern = ffn_pattern(c.ffn)
        self.layers_per_scan_step = len(pattern)

        @nnx.split_rngs(splits=c.num_layers // len(pattern))
        @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
        def stacked_blocks(rngs: nnx.Rngs) -> TransformerBlock | BlockGroup:
            if len(pattern) == 1:
                return TransformerBlock(spec, attention_fn=attention_fn, rngs=rngs)
            specs = [dataclasses.replace(spec, ffn=ffn) for ffn in pattern]
            return BlockGroup(specs, attention_fn=attention_fn, rngs=rngs)

        self.blocks = stacked_blocks(rngs)
        self.final_norm = instantiate(c.norm, dim=c.d_model, param_dtype=c.param_dtype, rngs=rngs)
        self.head = None if c.tie_embeddings else param(
            rngs, (c.d_model, c.vocab_size), ("embed", "vocab"), std=c.init_std, dtype=c.param_dtype)

    def __call__(self, tokens: jax.Array, *, positions: jax.Array | None = None,
                 segment_ids: jax.Array | None = None) -> DecoderOutput:
        """tokens: (B, T) int32 -> logits (B, T, vocab) and the blocks' auxiliary scalars.

        Packed documents give their `positions` (restarting at 0 in each) and `segment_ids`
        (attention stays within a segment); by default one sequence per row."""
        batch, length = tokens.shape
        if positions is None:
            positions = jnp.broadcast_to(jnp.arange(length), (batch, length))
        x = self.shard(self.embed(tokens), HIDDEN_AXES)  # (B, T, d_model)
        block_def, stacked_state = nnx.split(self.blocks)

        def one_block(x, block_state):
            x, aux = nnx.merge(block_def, block_state)(x, positions, segment_ids)
            return self.shard(x, HIDDEN_AXES), aux

        # Scan keeps compile time flat in depth; remat (from conf/remat) wraps one block.
        x, aux = jax.lax.scan(self.remat(one_block), x, stacked_state)
        logits = self.shard(self._logits(x), ("batch", "length", "vocab"))
        return DecoderOutput(logits=logits, aux=reduce_aux(aux))

    def extend(self, tokens: jax.Array, positions: jax.Array, cache: KVCache, step: Step, *,
               logits_at: jax.Array, blocks: list[nnx.State] | None = None) -> tuple[jax.Array, KVCache]:
        """Generation: `tokens` at `positions` (B, T) go through the model and into `cache`
        (see kv_cache.py). Returns the float32 logits (B, vocab) at index `logits_at` (B,) of
        each row's T tokens, and the cache.

        `blocks` (from `unstacked_blocks`): the blocks' weights as separate arrays, run one
        after the other instead of scanned; a layer sliced out of the stacked weights inside a
        loop is a copy on CPU, which makes a one-token step read its weights three times."""
        x = self.embed(tokens)  # (B, T, d_model)
        block_def, stacked_state = nnx.split(self.blocks)

        def one_block(carry, block_state):
            x, cache, layer = carry
            x, cache = nnx.merge(block_def, block_state).extend(x, positions, cache, layer, step)
            return (x, cache, layer + self.layers_per_scan_step), None

        carry = (x, cache, jnp.int32(0))
        if blocks is None:  # the cache is carried (not scanned over): updated in place
            (x, cache, _), _ = jax.lax.scan(one_block, carry, stacked_state)
        else:
            for block_state in blocks:
                carry, _ = one_block(carry, block_state)
            x, cache, _ = carry
        last = jnp.take_along_axis(x, logits_at[:, None, None], axis=1)  # (B, 1, d_model)
        return self._logits(last)[:, 0], cache

    def _logits(self, x: jax.Array) -> jax.Array:
        """Final norm and LM head: (B, T, d_model) -> float32 (B, T, vocab)."""
        x = self.final_norm(x)
        logits = self.embed.attend(x) if self.head is None else x @ use(self.head, self.dtype)
        return logits.astype(jnp.float32)


@jax.jit
def unstacked_blocks(params: nnx.State) -> list[nnx.State]:
    """A Decoder's stacked block weights as one state per scan step, separate arrays."""
    stacked = params["blocks"]
    steps = jax.tree.leaves(stacked)[0].shape[0]
    return [jax.tree.map(lambda x: x[i], stacked) for i in range(steps)]  # noqa: B023 - used at once


def reduce_aux(stacked: dict) -> dict:
    """Per-layer aux values stacked on axis 0 -> scalars: losses add up, metrics average."""
    return {k: jnp.sum(v) if k.endswith("_loss") else jnp.mean(v) for k, v in stacked.items()}


class BlockGroup(nnx.Module):
    """Consecutive blocks that differ (e.g. dense, dense, MoE), run as one scan step."""

    def __init__(self, specs: list[BlockSpec], *, attention_fn: AttentionFn, rngs: nnx.Rngs):
        self.blocks = nnx.List([TransformerBlock(s, attention_fn=attention_fn, rngs=rngs) for s in specs])

    def __call__(self, x: jax.Array, positions: jax.Array,
                 segment_ids: jax.Array | None = None) -> tuple[jax.Array, dict]:
        per_block = []
        for block in self.blocks:
            x, aux = block(x, positions, segment_ids)
            per_block.append(aux)
        keys = {k for aux in per_block for k in aux}
        return x, reduce_aux({k: jnp.stack([a[k] for a in per_block if k in a]) for k in keys})

    def extend(self, x: jax.Array, positions: jax.Array, cache: KVCache, layer: jax.Array,
               step: Step) -> tuple[jax.Array, KVCache]:
        for offset, block in enumerate(self.blocks):
            x, cache = block.extend(x, positions, cache, layer + offset, step)
        return x, cache
