"""Self-attention, one `model/attention` option per module (`gqa`, the default, and its
variants: `qkv_bias`, `qk_norm`).

Every option is built as `cls(config, d_model=..., num_heads=..., num_kv_heads=...,
head_dim=..., position=..., attention_fn=..., numerics=..., norm=..., rngs=...)`: `position`
is the built position layer, `norm` the model's norm config (for options that normalise
inside attention), `attention_fn` the kernel (conf/kernel). It is called as
`attention(x, positions, segment_ids)` and `attention.extend(x, positions, cache, layer, step)`
(generation) on x of shape (B, T, d_model). Variants subclass `gqa.Attention` and override
`project_heads`, the per-head projections before the position encoding.
"""

from typing import Any, Callable

# The kernel: (q (B, T, N, D), k and v (B, T, K, D)[, segment_ids (B, T)]) -> context (B, T, N, D).
# No jax import here: the package's *_config modules are read by the jax-free config room.
AttentionFn = Callable[..., Any]
