"""Attention kernels (conf/kernel): a name in config -> the function every Attention calls.

Every kernel computes the same causal softmax attention, `fn(q, k, v, segment_ids=None) ->
context` with q: (B, T, N, D), k, v: (B, T, K, D), K dividing N (grouped-query), and for packed
documents segment_ids: (B, T), a query seeing only keys of its own segment:
- xla: jax.nn.dot_product_attention's XLA path; runs everywhere.
- cudnn: the same API's cuDNN fused (flash) path; NVIDIA GPU, bfloat16/float16 only. It takes
  the segment mask as a dense (B, 1, T, T) additive bias (T^2 memory per layer, not flash-like).
- pallas: the Pallas/Triton flash-attention kernel in jax.experimental (NVIDIA GPU).
- splash: the Pallas TPU splash-attention kernel (TPU; sequence a multiple of 128).
`auto` takes the hardware's preferred kernel where it can run for this model and sequence
length (flash kernels only pay off on long sequences), else xla; the choice is recorded.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp

from hydralearn.compose.hardware import Host
from hydralearn.config.schema import Kernel, KernelConfig, Platform
from hydralearn.compose.sharding import logical_to_spec
from hydralearn.layers.attention import AttentionFn


@dataclasses.dataclass(frozen=True, kw_only=True)
class AttentionShape:
    """What a kernel's requirements depend on."""

    compute_dtype: str
    head_dim: int
    seq_len: int
    segments: bool = False  # packed documents: attention masked by segment ids


def requirements(name: Kernel, *, host: Host, shape: AttentionShape) -> str | None:
    """None if `name` can run here; otherwise what it needs, in words."""
    needs = []
    if name in (Kernel.cudnn, Kernel.pallas) and host.platform is not Platform.gpu:
        needs.append("an NVIDIA GPU (platform gpu)")
    if name is Kernel.cudnn and shape.compute_dtype not in ("bfloat16", "float16"):
        needs.append(f"model.compute_dtype bfloat16 or float16 (not {shape.compute_dtype})")
    if name is Kernel.cudnn and shape.head_dim > 128:
        needs.append(f"head_dim <= 128 (not {shape.head_dim})")
    if name is Kernel.splash and host.platform is not Platform.tpu:
        needs.append("a TPU (platform tpu)")
    if name is Kernel.splash and shape.seq_len % 128:
        needs.append(f"data.seq_len a multiple of 128 (not {shape.seq_len})")
    if name is Kernel.cudnn and shape.segments and shape.seq_len % 2:
        needs.append(f"data.seq_len even with data.packing=segments (not {shape.seq_len}; cuDNN "
                     "trains with the document mask, a bias, only on even lengths)")
    return " and ".join(needs) or None


def block_errors(config: KernelConfig) -> list[str]:
    """Splash tiles the sequence in multiples of 128 (a TPU lane width)."""
    if config.name is Kernel.splash:
        return [f"kernel.{n}={getattr(config, n)} must be a multiple of 128 for kernel=splash"
                for n in ("block_q", "block_kv") if getattr(config, n) % 128]
    return []


def kernel_errors(config: KernelConfig, *, host: Host, shape: AttentionShape) -> list[str]:
    missing = requirements(config.name, host=host, shape=shape)
    if missing is None:
        return block_errors(config)
    return [f"kernel.name={config.name.value} cannot run here: it needs {missing}; this host has "
            f"{host.describe()}; choose kernel=xla (runs everywhere) or kernel=auto"]


def resolve_kernel(config: KernelConfig, *, preferred: Kernel, host: Host,
                   shape: AttentionShape) -> KernelConfig:
    """`auto` becomes a concrete kernel, recorded in the saved config."""
    if config.name is not Kernel.auto:
        return config
    choice = preferred
    if (choice is Kernel.auto or shape.seq_len < config.flash_min_seq_len
            or requirements(choice, host=host, shape=shape) is not None):
        choice = Kernel.xla
    return dataclasses.replace(config, name=choice)


def attention_function(config: KernelConfig, *, interpret: bool = False) -> AttentionFn:
    """The kernel as `fn(q, k, v, segment_ids=None)`; `interpret` runs Pallas kernels in the
    Pallas interpreter (any backend, slow): used by tests to check them where their hardware is
    absent."""
    if config.name in (Kernel.xla, Kernel.cudnn):
        return functools.partial(_dot_product, implementation=config.name.value)
    if config.name is Kernel.pallas:
        return functools.partial(_pallas_gpu, block_q=config.block_q, block_kv=config.block_kv,
                                 interpret=interpret)
    if config.name is Kernel.splash:
        return functools.partial(_splash_tpu, block_q=config.block_q, block_kv=config.block_kv,
                                 interpret=interpret)
    raise ValueError(f"kernel.name={config.name.value} must be resolved before building")


def _dot_product(q, k, v, segment_ids=None, *, implementation: str):
    """Causal attention; with `segment_ids` (B, T) a query sees only keys of its own segment."""
    mask = None if segment_ids is None else \
        (segment_ids[:, :, None] == segment_ids[:, None, :])[:, None]  # (B, 1, T, S)
    return jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=True,
                                        implementation=implementation)


def per_shard(fn: AttentionFn, *, mesh, rules) -> AttentionFn:
    """Run a Pallas kernel on each device's shard (XLA cannot partition a custom kernel).

    Attention is independent per sequence and per head, so batch and head shards need no
    communication; the sequence stays whole on each device (no context parallelism here).
    Segment ids go with their rows (batch-sharded); an absent one (None) maps to nothing.
    """
    q_spec = logical_to_spec(("batch", None, "heads", None), rules)
    kv_spec = logical_to_spec(("batch", None, "kv_heads", None), rules)
    segment_spec = logical_to_spec(("batch", None), rules)
    if all(mesh.shape[a] == 1 for a in mesh.axis_names):
        return fn
    mapped = jax.shard_map(fn, mesh=mesh, in_specs=(q_spec, kv_spec, kv_spec, segment_spec),
                           out_specs=q_spec, check_vma=False)
    return lambda q, k, v, segment_ids=None: mapped(q, k, v, segment_ids)


def _repeat_kv(q: jax.Array, k: jax.Array, v: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Grouped-query k, v (B, T, K, D) -> (B, T, N, D) for kernels that need equal heads."""
    groups = q.shape[2] // k.shape[2]
    return jnp.repeat(k, groups, axis=2), jnp.repeat(v, groups, axis=2)


def _pallas_gpu(q, k, v, segment_ids=None, *, block_q: int, block_kv: int, interpret: bool):
    """The Triton kernel wants as many k/v heads as query heads; it masks by segment ids itself."""
    from jax.experimental.pallas.ops.gpu import attention as pallas_attention

    k, v = _repeat_kv(q, k, v)
    bq, bk = min(block_q, q.shape[1]), min(block_kv, k.shape[1])
    # The fused backward walks dq's query tiles on dk/dv's key-tile grid: same tile for both.
    blocks = pallas_attention.BlockSizes(block_q=bq, block_k=bk, block_q_dkv=bq, block_kv_dkv=bk,
                                         block_q_dq=bk, block_kv_dq=bq)
    return pallas_attention.mha(q, k, v, segment_ids, sm_scale=q.shape[-1] ** -0.5, causal=True,
                                block_sizes=blocks, interpret=interpret)


def _splash_tpu(q, k, v, segment_ids=None, *, block_q: int, block_kv: int, interpret: bool):
    """Splash runs one example at a time (vmapped), heads first; it takes grouped-query k/v
    heads as they are and ANDs the causal mask with a segment mask of its own."""
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as splash
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as masks

    length, heads = q.shape[1], q.shape[2]
    bq, bk = min(block_q, length), min(block_kv, length)
    blocks = splash.BlockSizes(block_q=bq, block_kv=bk, block_q_dkv=bq, block_kv_dkv=bk,
                               block_q_dq=bq, block_kv_dq=bk)
    mask = masks.MultiHeadMask([masks.CausalMask((length, length))] * heads)
    kernel = splash.make_splash_mha(mask, block_sizes=blocks, head_shards=1, q_seq_shards=1,
                                    interpret=interpret)
    to_heads_first = lambda x: jnp.swapaxes(x, 1, 2)  # noqa: E731 - (B, T, N, D) -> (B, N, T, D)
    q = q * q.shape[-1] ** -0.5  # splash does not scale the logits itself
    segments = None if segment_ids is None else splash.SegmentIds(q=segment_ids, kv=segment_ids)
    out = jax.vmap(kernel)(to_heads_first(q), to_heads_first(k), to_heads_first(v), segments)
    return to_heads_first(out)
