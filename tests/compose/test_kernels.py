"""Attention kernels: numerics against a softmax attention written here, auto resolution,
and a clear refusal of kernels this host cannot run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hydralearn.compose.hardware import Host, Platform
from hydralearn.compose.kernels import (AttentionShape, Kernel, KernelConfig, attention_function,
                                        kernel_errors, resolve_kernel)
from hydralearn.errors import ConfigError
from tests.compose.cli_run import run_cli
from tests.conftest import tiny_config

ON_GPU = jax.default_backend() == "gpu"
ON_TPU = jax.default_backend() == "tpu"
NO_GPU = "needs an NVIDIA GPU; this host (and CI) has none"


def numpy_attention(q, k, v):
    """Causal softmax attention in float64 numpy; k/v heads repeated for grouped queries."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    groups = q.shape[2] // k.shape[2]
    k, v = np.repeat(k, groups, axis=2), np.repeat(v, groups, axis=2)
    scores = np.einsum("btnd,bsnd->bnts", q, k) / np.sqrt(q.shape[-1])
    t = q.shape[1]
    scores = np.where(np.tril(np.ones((t, t), bool)), scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return np.einsum("bnts,bsnd->btnd", weights, v)


def qkv(length: int = 128, dtype=jnp.float32):
    rng = np.random.default_rng(0)
    shapes = [(2, length, 4, 16), (2, length, 2, 16), (2, length, 2, 16)]  # 4 query, 2 kv heads
    return [jnp.asarray(rng.normal(size=s), dtype) for s in shapes]


def _grads(fn, q, k, v):
    return jax.grad(lambda *a: jnp.sum(jnp.sin(fn(*a))), argnums=(0, 1, 2))(q, k, v)


# Pallas kernels run in the Pallas interpreter here (any backend): the wrappers' layout,
# scaling and grouped-query handling are checked even without their hardware.
@pytest.mark.parametrize("name", ["xla", "pallas", "splash"])
def test_kernel_matches_reference_forward_and_backward(name):
    q, k, v = qkv()
    fn = attention_function(KernelConfig(name=Kernel(name)), interpret=name != "xla")
    np.testing.assert_allclose(fn(q, k, v), numpy_attention(q, k, v), atol=2e-5)
    xla = attention_function(KernelConfig(name=Kernel.xla))
    for got, want in zip(_grads(fn, q, k, v), _grads(xla, q, k, v)):
        np.testing.assert_allclose(got, want, atol=5e-5)


@pytest.mark.skipif(not ON_GPU, reason=NO_GPU)
@pytest.mark.parametrize("name", ["cudnn", "pallas"])
def test_gpu_kernel_matches_xla_on_the_gpu(name):
    q, k, v = qkv(length=1024, dtype=jnp.bfloat16)
    fn = attention_function(KernelConfig(name=Kernel(name)))
    want = numpy_attention(q, k, v)
    np.testing.assert_allclose(np.asarray(fn(q, k, v), np.float32), want, atol=2e-2)


@pytest.mark.skipif(not ON_TPU, reason="needs a TPU; this host (and CI) has none")
def test_splash_matches_reference_on_the_tpu():
    q, k, v = qkv(length=512)
    fn = attention_function(KernelConfig(name=Kernel.splash))
    np.testing.assert_allclose(fn(q, k, v), numpy_attention(q, k, v), atol=2e-2)


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


def test_pallas_kernels_run_per_shard_on_a_sharded_mesh(monkeypatch):
    """data2 x fsdp2 x tensor2: the kernel sees its batch and head shard and the model gives
    the loss of the xla kernel (Pallas interpreter standing in for the GPU)."""
    import dataclasses

    from hydralearn.compose import build as build_module
    from hydralearn.data.pipeline import load_corpus, train_batch

    layout = ["mesh=fsdp_tp", "mesh.axes.data=2", "mesh.axes.fsdp=2", "mesh.axes.tensor=2",
              "sharding=fsdp_tp", "model.num_layers=1"]
    config = tiny_config(*layout, device_count=8)
    real, seen = build_module.attention_function, []

    def recording(kernel_config):
        fn = real(kernel_config, interpret=True)
        return lambda q, k, v: seen.append((kernel_config.name.value, q.shape, k.shape)) or fn(q, k, v)
    monkeypatch.setattr(build_module, "attention_function", recording)
    corpus = load_corpus(config.data)
    batch = train_batch(config.data, corpus, 0)
    losses = {}
    for name in ("xla", "pallas"):
        kernel = dataclasses.replace(config.kernel, name=Kernel(name), block_q=8, block_kv=8)
        program = build_module.build(dataclasses.replace(config, kernel=kernel))
        put = lambda x: jax.device_put(x, program.batch_sharding)  # noqa: E731
        params = program.init_state().params
        losses[name] = float(program.eval_step(params, put(batch.inputs), put(batch.targets)))
    assert losses["pallas"] == pytest.approx(losses["xla"], rel=1e-5)
    # Global (8, 16, 4, 8) / (8, 16, 2, 8); pallas sees a quarter of the batch (data x fsdp)
    # and half the heads (tensor); xla sees global shapes and is partitioned by XLA.
    assert ("pallas", (2, 16, 2, 8), (2, 16, 1, 8)) in seen
    assert ("xla", (8, 16, 4, 8), (8, 16, 2, 8)) in seen
