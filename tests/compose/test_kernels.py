"""Attention kernels: numerics against a softmax attention written here, auto resolution,
and a clear refusal of kernels this host cannot run."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hydralearn.compose.hardware import Host, Platform
from hydralearn.compose.kernels import (AttentionShape, Kernel, KernelConfig, attention_function,
                                        kernel_errors, requirements, resolve_kernel)
from hydralearn.errors import ConfigError
from tests.compose.cli_run import run_cli
from tests.conftest import tiny_config

ON_GPU = jax.default_backend() == "gpu"
ON_TPU = jax.default_backend() == "tpu"
NO_GPU = "needs an NVIDIA GPU; this host (and CI) has none"


def numpy_attention(q, k, v, segment_ids=None):
    """Causal softmax attention in float64 numpy; k/v heads repeated for grouped queries; with
    `segment_ids` (B, T) a query sees only earlier keys of its own segment."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    groups = q.shape[2] // k.shape[2]
    k, v = np.repeat(k, groups, axis=2), np.repeat(v, groups, axis=2)
    scores = np.einsum("btnd,bsnd->bnts", q, k) / np.sqrt(q.shape[-1])
    t = q.shape[1]
    visible = np.tril(np.ones((1, t, t), bool))  # (B or 1, T, S)
    if segment_ids is not None:
        ids = np.asarray(segment_ids)
        visible = visible & (ids[:, :, None] == ids[:, None, :])
    scores = np.where(visible[:, None], scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return np.einsum("bnts,bsnd->btnd", weights, v)


def qkv(length: int = 128, dtype=jnp.float32):
    rng = np.random.default_rng(0)
    shapes = [(2, length, 4, 16), (2, length, 2, 16), (2, length, 2, 16)]  # 4 query, 2 kv heads
    return [jnp.asarray(rng.normal(size=s), dtype) for s in shapes]


def segment_ids(length: int = 128) -> jax.Array:
    """(2, length): row 0 packs three documents, row 1 two and then padding (segment 0), as
    data.packing=segments does; the cuts fall inside the kernels' tiles."""
    scale = length // 128
    rows = [np.repeat([1, 2, 3], np.diff([0, 50 * scale, 65 * scale, length])),
            np.repeat([1, 2, 0], np.diff([0, 9 * scale, 100 * scale, length]))]
    return jnp.asarray(np.stack(rows), jnp.int32)


def _output_and_grads(fn, q, k, v, **segments) -> list[jax.Array]:
    """fn's output, then the gradients of sum(sin(output)) in q, k and v."""
    out, pullback = jax.vjp(lambda *a: fn(*a, **segments), q, k, v)
    return [out, *pullback(jnp.cos(out))]


@pytest.mark.parametrize("segmented", [False, True], ids=["causal", "segments"])
def test_xla_kernel_matches_numpy(segmented):
    q, k, v = qkv()
    segments = {"segment_ids": segment_ids()} if segmented else {}
    fn = attention_function(KernelConfig(name=Kernel.xla))
    np.testing.assert_allclose(fn(q, k, v, **segments), numpy_attention(q, k, v, **segments), atol=1e-6)


# Pallas kernels run in Pallas' HLO interpreter here (`interpret=True`, any backend), forward
# and backward, so the wrappers' layout, scaling, grouped-query heads and segment ids are checked
# without their hardware. For splash that is what jax 0.10.2 runs under vmap: inside
# pltpu.force_tpu_interpret_mode() the vmapped kernel fails (vmap adds a grid axis that its
# dimension_semantics lack). Several tiles per row (splash tiles are at least 128), so both the
# tiles skipped above the diagonal and the masking inside the others are exercised; pallas with
# query and key tiles of different sizes.
@pytest.mark.parametrize("segmented", [False, True], ids=["causal", "segments"])
@pytest.mark.parametrize("name, length, block_q, block_kv", [("pallas", 128, 32, 64),
                                                             ("splash", 256, 128, 128)])
def test_pallas_kernel_matches_xla_forward_and_backward(name, length, block_q, block_kv, segmented):
    q, k, v = qkv(length)
    segments = {"segment_ids": segment_ids(length)} if segmented else {}
    config = KernelConfig(name=Kernel(name), block_q=block_q, block_kv=block_kv)
    fn = attention_function(config, interpret=True)
    got = _output_and_grads(fn, q, k, v, **segments)
    want = _output_and_grads(attention_function(KernelConfig(name=Kernel.xla)), q, k, v, **segments)
    for what, g, w, atol in zip(("out", "dq", "dk", "dv"), got, want, (2e-6, 5e-6, 1e-5, 3e-5)):
        np.testing.assert_allclose(g, w, atol=atol, err_msg=what)


@pytest.mark.skipif(not ON_GPU, reason=NO_GPU)
@pytest.mark.parametrize("segmented", [False, True], ids=["causal", "segments"])
@pytest.mark.parametrize("name", ["cudnn", "pallas"])
def test_gpu_kernel_matches_reference_on_the_gpu(name, segmented):
    q, k, v = qkv(length=1024, dtype=jnp.bfloat16)
    segments = {"segment_ids": segment_ids(1024)} if segmented else {}
    fn = attention_function(KernelConfig(name=Kernel(name)))
    want = numpy_attention(q, k, v, **segments)
    np.testing.assert_allclose(np.asarray(fn(q, k, v, **segments), np.float32), want, atol=2e-2)


@pytest.mark.skipif(not ON_TPU, reason="needs a TPU; this host (and CI) has none")
@pytest.mark.parametrize("segmented", [False, True], ids=["causal", "segments"])
def test_splash_matches_reference_on_the_tpu(segmented):
    q, k, v = qkv(length=512)
    segments = {"segment_ids": segment_ids(512)} if segmented else {}
    fn = attention_function(KernelConfig(name=Kernel.splash))
    np.testing.assert_allclose(fn(q, k, v, **segments), numpy_attention(q, k, v, **segments), atol=2e-2)


GPU = Host(platform=Platform.gpu, device_count=8, device_kind="NVIDIA H100", actual=True)
CPU = Host(platform=Platform.cpu, device_count=8, device_kind="cpu", actual=True)
TPU = Host(platform=Platform.tpu, device_count=4, device_kind="TPU v5p", actual=True)
BF16_LONG = AttentionShape(compute_dtype="bfloat16", head_dim=128, seq_len=4096)


@pytest.mark.parametrize("preferred, host, shape, expected", [
    ("cudnn", GPU, BF16_LONG, "cudnn"),
    ("cudnn", GPU, AttentionShape(compute_dtype="bfloat16", head_dim=128, seq_len=256), "xla"),  # short
    ("cudnn", GPU, AttentionShape(compute_dtype="float32", head_dim=128, seq_len=4096), "xla"),  # f32
    ("cudnn", CPU, BF16_LONG, "xla"),  # a GPU profile planned on, run on CPU
    ("splash", TPU, BF16_LONG, "splash"),
    ("splash", TPU, AttentionShape(compute_dtype="bfloat16", head_dim=128, seq_len=4000), "xla"),
    ("pallas", GPU, BF16_LONG, "pallas"),
])
def test_auto_resolves_by_platform_and_sequence_length(preferred, host, shape, expected):
    preferred = Kernel(preferred)
    resolved = resolve_kernel(KernelConfig(), preferred=preferred, host=host, shape=shape)
    assert resolved.name.value == expected


def test_explicit_kernel_beats_the_hardware_preference():
    config = tiny_config("hardware=gpu_h100", "kernel=xla", "model.compute_dtype=bfloat16",
                         "data.seq_len=2048", device_count=8)
    assert config.kernel.name is Kernel.xla
    auto = tiny_config("hardware=gpu_h100", "model.compute_dtype=bfloat16", "data.seq_len=2048",
                       device_count=8)
    assert auto.kernel.name is Kernel.cudnn


def test_every_kernel_keeps_packed_documents_apart():
    segments = dataclasses.replace(BF16_LONG, segments=True)
    for name, host in (("xla", CPU), ("cudnn", GPU), ("pallas", GPU), ("splash", TPU)):
        assert requirements(Kernel(name), host=host, shape=segments) is None, name
    auto = resolve_kernel(KernelConfig(), preferred=Kernel.cudnn, host=GPU, shape=segments)
    assert auto.name is Kernel.cudnn
    # cuDNN trains with a bias (the document mask) only on even sequence lengths.
    odd = dataclasses.replace(segments, seq_len=4095)
    (error,) = kernel_errors(KernelConfig(name=Kernel.cudnn), host=GPU, shape=odd)
    assert "data.seq_len even with data.packing=segments (not 4095" in error
    assert requirements(Kernel.cudnn, host=GPU, shape=dataclasses.replace(odd, segments=False)) is None


def test_unrunnable_kernel_error_names_kernel_need_and_host():
    (error,) = kernel_errors(KernelConfig(name=Kernel.cudnn), host=CPU, shape=BF16_LONG)
    assert "kernel.name=cudnn" in error and "needs an NVIDIA GPU" in error
    assert "this host has 8 cpu device(s)" in error
    with pytest.raises(ConfigError, match="kernel.name=splash cannot run here: it needs a TPU"):
        tiny_config("kernel=splash")
    with pytest.raises(ConfigError, match="kernel.block_q=64 must be a multiple of 128"):
        tiny_config("hardware=tpu_v5p", "kernel=splash", "kernel.block_q=64", "data.seq_len=256",
                    "data.batch_size=4", device_count=4)


def test_cudnn_on_cpu_exits_2_before_any_work(tmp_path):
    result = run_cli(tmp_path, "kernel=cudnn")
    assert result.returncode == 2, result.stderr
    assert "kernel.name=cudnn cannot run here: it needs an NVIDIA GPU" in result.stderr
    assert "this host has 1 cpu device(s)" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "metrics.jsonl").exists()


@pytest.mark.slow
def test_pallas_kernels_run_per_shard_on_a_sharded_mesh(monkeypatch):
    """data2 x fsdp2 x tensor2: the kernel sees its batch and head shard (and its rows' segment
    ids) and the model gives the loss of the xla kernel (Pallas interpreter for the GPU)."""
    from hydralearn.compose import build as build_module
    from hydralearn.data.pipeline import load_corpus, train_batch

    layout = ["mesh=fsdp_tp", "mesh.axes.data=2", "mesh.axes.fsdp=2", "mesh.axes.tensor=2",
              "sharding=fsdp_tp", "model.num_layers=1"]
    config = tiny_config(*layout, device_count=8)
    real, seen = build_module.attention_function, []

    def recording(kernel_config):
        fn = real(kernel_config, interpret=True)

        def record(q, k, v, segment_ids=None):
            seen.append((kernel_config.name.value, q.shape, k.shape, getattr(segment_ids, "shape", None)))
            return fn(q, k, v, segment_ids)
        return record
    monkeypatch.setattr(build_module, "attention_function", recording)
    corpus = load_corpus(config.data)
    batch = train_batch(config.data, corpus, 0)
    # (8, 16): three documents a row, cut at different places in each row.
    cuts, tokens = np.arange(8)[:, None] + np.array([2, 8]), np.arange(16)
    ids = 1 + (tokens >= cuts[:, :1]) + (tokens >= cuts[:, 1:])
    starts = np.where(ids == 1, 0, np.where(ids == 2, cuts[:, :1], cuts[:, 1:]))
    documents = {"segment_ids": ids, "positions": tokens - starts}
    losses = {}
    for name in ("xla", "pallas"):
        kernel = dataclasses.replace(config.kernel, name=Kernel(name), block_q=8, block_kv=8)
        program = build_module.build(dataclasses.replace(config, kernel=kernel))
        put = lambda x: jax.device_put(x, program.batch_sharding)  # noqa: E731
        params = program.init_state().params
        inputs, targets = put(batch.inputs), put(batch.targets)
        losses[name] = float(program.eval_step(params, inputs, targets))
        losses[name, "segments"] = float(program.eval_step(
            params, inputs, targets, {n: put(a.astype(np.int32)) for n, a in documents.items()}))
    assert losses["pallas"] == pytest.approx(losses["xla"], rel=1e-5)
    assert losses["pallas", "segments"] == pytest.approx(losses["xla", "segments"], rel=1e-5)
    # The ids move the loss by more than that tolerance: losing them on the way would show.
    assert losses["xla", "segments"] != pytest.approx(losses["xla"], rel=1e-4)
    # Global (8, 16, 4, 8) / (8, 16, 2, 8); pallas sees a quarter of the batch (data x fsdp)
    # and half the heads (tensor), and its rows' segment ids; xla sees global shapes and is
    # partitioned by XLA.
    shard = ("pallas", (2, 16, 2, 8), (2, 16, 1, 8))
    assert (*shard, None) in seen and (*shard, (2, 16)) in seen
    assert ("xla", (8, 16, 4, 8), (8, 16, 2, 8), (8, 16)) in seen
