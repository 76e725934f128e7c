"""Per-device memory estimate of one training step: parameters, optimizer state, gradients and
the activations the remat policy keeps for the backward pass.

Parameters and optimizer state are exact (abstract shapes sharded on the mesh). Activations
are a model, per token and per layer, in elements (x the compute dtype's bytes):

    saved by every policy   d                          the block input (the scan carry)
    saved without remat     4d + 3q + 3kv + ffn + s    norm outputs, o_proj and ffn outputs (4d);
                                                       q/k/v projections, rotated q/k, context;
                                                       the feed-forward's hidden activations;
                                                       attention probabilities s = heads * T (float32,
                                                       only with the xla kernel: flash kernels keep none)
    checkpoint names        q_proj=q, k_proj=kv, v_proj=kv, attn_context=q, o_proj=d,
                            ffn_in=ffn - ffn_dim, ffn_out=d

with q = heads * head_dim, kv = kv_heads * head_dim; head and mlp widths are divided by the mesh
axes their logical axes shard over. A policy that recomputes adds one layer's full activations
(the layer being recomputed). The logits add V * (itemsize + 4) bytes per token: the head's
output in the compute dtype and one float32 copy for the loss (the compiled steps of the ledger
hold about one float32 copy at their peak, the softmax gradient reusing it).
With trainer.grad_accum=K only one microbatch (1/K of the batch) holds activations at a time,
and the gradients gain a float32 accumulator (one float32 copy of the parameter shards).
The layer being computed also holds its weights as its matmuls use them: gathered over the
mesh axes the batch is split on (FSDP), except expert weights (each device keeps its experts),
cast to the compute dtype, for two scan steps at a time (XLA prefetches the next layer's
weights while one layer runs).
Compare with XLA's own figure: `hydralearn-plan --compile` (docs/tooling.md); the compiled
ledger (tests/golden/*.compiled.json) holds the comparison for every accelerator experiment.
"""

import dataclasses
import math

import numpy as np

from hydralearn.config.schema import TrainConfig
from hydralearn.layers.checkpoint_names import (ATTN_CONTEXT, FFN_IN, FFN_OUT, K_PROJ, O_PROJ, Q_PROJ,
                                                QKV_PROJ, V_PROJ)


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    params: int  # bytes per device
    optimizer: int
    grads: int  # with gradient accumulation, the float32 accumulator too
    activations: int
    gathered_weights: int  # two scan steps' block weights, gathered (FSDP) and cast
    batch_shards: int  # how many ways the global batch is split

    @property
    def total(self) -> int:
        return self.params + self.optimizer + self.grads + self.activations + self.gathered_weights

    def as_dict(self) -> dict[str, int]:
        return {"params": self.params, "optimizer": self.optimizer, "grads": self.grads,
                "activations": self.activations, "gathered_weights": self.gathered_weights,
                "total": self.total}


# Checkpoint names each named remat policy keeps on the device (conf/remat). save_dots keeps
# the matmuls without batch dimensions: every projection, not the attention itself.
POLICY_SAVES = {
    "full": (),
    "save_dots": (*QKV_PROJ, O_PROJ, FFN_IN, FFN_OUT),
    "save_qkv_proj": QKV_PROJ,
    "save_attn_context": (ATTN_CONTEXT,),
    "offload_dots": (),  # kept in host memory, not on the device
    "offload_qkv_proj": (),
}


def saved_names(config: TrainConfig) -> frozenset[str] | None:
    """Checkpoint names the remat policy keeps on the device; None means every activation.

    `custom` keeps the names it marks `save` (offloaded ones live in host memory); an unknown
    policy is costed as keeping everything (an overestimate rather than a surprise).
    """
    policy = config.remat.policy.value
    if policy == "custom":
        names = getattr(config.remat, "names", {})
        return frozenset(n for n, action in names.items() if getattr(action, "value", action) == "save")
    return frozenset(POLICY_SAVES[policy]) if policy in POLICY_SAVES else None


def estimate(config: TrainConfig, *, mesh: dict[str, int], param_bytes: int, grad_bytes: int,
             optimizer_bytes: int, ffn_width: float, gathered_step_bytes: float) -> MemoryEstimate:
    """`gathered_step_bytes`: one scan step's block weights per device as its matmuls use them."""
    shards = _Shards(config, mesh)
    microbatches = config.trainer.grad_accum
    tokens = math.ceil(config.data.batch_size / shards.batch / microbatches) \
        * config.data.seq_len / shards.length
    model = config.model
    width = _widths(config, shards, ffn_width)
    every = 4 * model.d_model + 3 * width["q"] + 3 * width["kv"] + width["ffn"]
    itemsize = np.dtype(model.compute_dtype).itemsize
    # Only the plain XLA kernel materializes the (T x T) probabilities; flash kernels (cudnn,
    # splash, pallas) keep per-row statistics instead, negligible here.
    scores = width["scores"] if config.kernel.name.value == "xla" else 0.0
    full_layer = every * itemsize + 4 * scores
    names = saved_names(config)
    if names is None:
        saved, working = model.d_model * itemsize + full_layer, 0.0
    else:
        saved = (model.d_model + sum(width[n] for n in names if n in width)) * itemsize
        working = full_layer
    logits = (itemsize + 4) * model.vocab_size / shards.vocab
    activations = tokens * (model.num_layers * saved + working + logits)
    accumulator = grad_bytes * 4 // np.dtype(model.param_dtype).itemsize if microbatches > 1 else 0
    return MemoryEstimate(params=param_bytes, optimizer=optimizer_bytes, grads=grad_bytes + accumulator,
                          activations=int(activations), gathered_weights=int(2 * gathered_step_bytes),
                          batch_shards=shards.batch)


class _Shards:
    """How many ways each logical axis is split on the mesh."""

    def __init__(self, config: TrainConfig, mesh: dict[str, int]):
        def ways(name: str) -> int:
            return math.prod(mesh.get(a, 1) for a in config.sharding.mesh_axes(name))

        self.batch = min(ways("batch"), config.data.batch_size)
        self.length, self.heads, self.kv_heads = ways("length"), ways("heads"), ways("kv_heads")
        self.mlp, self.vocab = ways("mlp"), ways("vocab")


def _widths(config: TrainConfig, shards: _Shards, ffn_width: float) -> dict[str, float]:
    model = config.model
    q = model.num_heads * model.resolved_head_dim / shards.heads
    kv = model.num_kv_heads * model.resolved_head_dim / shards.kv_heads
    ffn = ffn_width / shards.mlp
    # An ffn option states how many experts' hidden activations a token makes (a hook of
    # layers/ffn/__init__.py; 1 for a dense feed-forward).
    hidden = model.ffn_dim * getattr(model.ffn, "experts_per_token", 1) / shards.mlp
    return {"q": q, "kv": kv, "ffn": ffn, "scores": model.num_heads * config.data.seq_len / shards.heads,
            Q_PROJ: q, K_PROJ: kv, V_PROJ: kv, ATTN_CONTEXT: q, O_PROJ: model.d_model,
            FFN_IN: max(ffn - hidden, 0.0), FFN_OUT: model.d_model}
