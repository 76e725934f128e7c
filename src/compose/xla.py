"""XLA options (hardware.xla_flags): per-hardware defaults, overridable entry by entry.

The backend reads its flags once, when it initialises, so they must be in the environment
before the first `jax.devices()`; `apply` refuses to run after that rather than be silently
ignored. GPU and CPU flags go to XLA_FLAGS; TPU flags to LIBTPU_INIT_ARGS (libtpu rejects
unknown XLA_FLAGS entries); Neuron compiler flags to NEURON_CC_FLAGS.
"""

import os
import sys
from pathlib import Path
from typing import Any

from hydralearn.config.schema import Platform

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


# Device files of attached accelerators: NVIDIA's driver, AMD's KFD, TPU chips (v4/v5p accel,
# v5e/v6e vfio) and Neuron cores. Their absence is known without starting a backend.
ACCELERATOR_DEVICES = ("nvidiactl", "nvidia0", "kfd", "accel0", "vfio/0", "neuron0")


def cpu_only_without_accelerators(environ: dict | None = None, dev: Path = Path("/dev")) -> None:
    """JAX on the CPU alone where no accelerator is attached (a user's JAX_PLATFORMS wins).

    Compilers installed for deviceless compiles (the aot extras: libtpu, the CUDA plugin)
    otherwise make every JAX start probe for their hardware and print tracebacks; where the
    hardware is attached, JAX still sees it, so a CPU profile on a GPU host is still refused.
    """
    environ = os.environ if environ is None else environ
    if "JAX_PLATFORMS" not in environ and not any((dev / d).exists() for d in ACCELERATOR_DEVICES):
        environ["JAX_PLATFORMS"] = "cpu"
