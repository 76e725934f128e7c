"""XLA options (hardware.xla_flags): per-hardware defaults, overridable entry by entry.

The backend reads its flags once, when it initialises, so they must be in the environment
before the first `jax.devices()`; `apply` refuses to run after that rather than be silently
ignored. GPU and CPU flags go to XLA_FLAGS; TPU flags to LIBTPU_INIT_ARGS (libtpu rejects
unknown XLA_FLAGS entries); Neuron compiler flags to NEURON_CC_FLAGS.
"""

import os
import sys
from typing import Any

from hydralearn.compose.schema import Platform

ENV_VAR = {Platform.cpu: "XLA_FLAGS", Platform.gpu: "XLA_FLAGS", Platform.tpu: "LIBTPU_INIT_ARGS",
           Platform.neuron: "NEURON_CC_FLAGS"}


class BackendAlreadyStarted(RuntimeError):
    """Flags applied once jax may have started its backend could have no effect."""


def flag_string(flags: dict[str, Any]) -> str:
    """{'xla_gpu_enable_latency_hiding_scheduler': True} -> '--xla_gpu_..._scheduler=true'."""
    return " ".join(f"--{name}={_value(value)}" for name, value in flags.items())


def _value(value: Any) -> str:
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def apply(flags: dict[str, Any], *, platform: Platform, environ: dict | None = None) -> dict[str, str]:
    """Append `flags` to the platform's variable; returns {variable: value} as set.

    Flags already in the environment come first, so ours win where both name a flag (XLA
    keeps the last occurrence)."""
    environ = os.environ if environ is None else environ
    if not flags:
        return {}
    if environ is os.environ and backend_started():
        raise BackendAlreadyStarted(
            "hardware.xla_flags must be applied before JAX initialises its backend")
    var = ENV_VAR[platform]
    environ[var] = f"{environ.get(var, '')} {flag_string(flags)}".strip()
    return {var: environ[var]}


def backend_started() -> bool:
    """Whether JAX has created a backend in this process. JAX has no public query for it; its
    public `jax.extend.backend.get_backend` caches each backend it creates, so a non-empty
    cache means it started. Where that cache is absent, an imported jax counts as started."""
    if "jax" not in sys.modules:
        return False
    import jax.extend.backend

    cache_info = getattr(jax.extend.backend.get_backend, "cache_info", None)
    return cache_info is None or cache_info().currsize > 0
