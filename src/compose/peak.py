"""The CPU's own peak FLOP/s for MFU (`hardware.peak_flops_per_device: auto` on CPU hosts).

A float32 XLA matmul is timed once per machine and cached, so the MFU in the progress bar
and summary.json is honest on any CPU instead of a constant measured elsewhere. The cache
key is the CPU model, the core count and the jax version; delete the file to measure again.
"""

import json
import os
import platform
import time
from pathlib import Path

SIZE = 2048  # large enough to saturate the cores, small enough to take about a second
REPEATS = 5


def cache_path() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "hydralearn" / "cpu_peak.json"


def machine_key() -> str:
    import jax

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} | {os.cpu_count()} cpus | jax {jax.__version__}"


def measured_cpu_peak() -> float:
    """FLOP/s of this host's float32 matmul, over all the cores JAX uses (cached)."""
    key, path = machine_key(), cache_path()
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return float(cached["flops_per_s"])
    except (OSError, ValueError):
        pass
    flops = measure_matmul_peak()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"key": key, "flops_per_s": flops}) + "\n")
    except OSError:
        pass  # a read-only home: measure again next time
    return flops


def measure_matmul_peak(size: int = SIZE, repeats: int = REPEATS) -> float:
    """Best of `repeats` timed (size x size) float32 matmuls on the first device."""
    import jax
    import jax.numpy as jnp

    device = jax.devices()[0]
    a = jax.device_put(jnp.ones((size, size), jnp.float32), device)
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()  # compile
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        matmul(a).block_until_ready()
        best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best
