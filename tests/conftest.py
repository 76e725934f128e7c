"""Shared fixtures. The whole pytest process sees 8 simulated CPU devices (set before jax is
imported); tests that want one device say so with `devices=jax.devices()[:1]`."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import dataclasses  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

from hydralearn.config import compose as compose_config  # noqa: E402
from hydralearn.compose.resolve import resolve

TINY = ["model.d_model=32", "model.num_layers=2", "model.num_heads=4", "model.num_kv_heads=2",
        "model.ffn_dim=64", "data=synthetic", "data.seq_len=16", "data.batch_size=8"]


def tiny_config(*overrides: str, device_count: int = 1):
    """The default config shrunk to test size, validated and resolved for `device_count`."""
    config = compose_config.load([*TINY, *overrides])
    return resolve(config, device_count=device_count)


@pytest.fixture(scope="session", autouse=True)
def compile_cache():
    """JAX's compilation cache of every process the suite starts (they inherit the environment,
    and `trainer.compile_cache: auto` takes JAX's own variable): this session's directory, never
    the user's. This process read its environment at `import jax` above: it compiles uncached."""
    with tempfile.TemporaryDirectory(prefix="hydralearn-test-jax-cache-") as directory, \
            pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAX_COMPILATION_CACHE_DIR", directory)
        yield directory


@pytest.fixture(scope="session")
def one_device():
    return jax.devices()[:1]


@pytest.fixture(scope="session")
def tiny_program(one_device):
    """One compiled tiny program shared by the tests that only read from it."""
    from hydralearn.compose.build import build
    return build(tiny_config("trainer.steps=50"), devices=one_device)


def replace(config, **groups):
    return dataclasses.replace(config, **groups)
