"""The CPU's own peak FLOP/s for MFU (`hardware.peak_flops_per_device: auto` on CPU hosts).

A float32 XLA matmul is timed in several short trials and the best is cached per machine, so
the MFU in the progress bar and summary.json is honest on any CPU instead of a constant
measured elsewhere. The cache key is the CPU model, the core count and the jax version;
delete the file to measure again. A measurement taken while other work held the cores is used
by the process that took it but never cached; a run that beats the peak measures it again
(`remeasured_cpu_peak`), and the cached value only ever rises.
"""

import dataclasses
import json
import logging
import os
import platform
import time
from pathlib import Path

from hydralearn.compose.cache import user_cache_dir

logger = logging.getLogger(__name__)

SIZE = 2048  # large enough to saturate the cores, ~0.1 s a matmul on 2 cores
TRIALS = 8
# A trial is quiet when this process had at least this share of its usable cores' time while
# it ran. Trials that agree prove nothing: a steady load slows them all alike (two busy loops
# on a 2-core machine: 8 trials at 131-169 GFLOP/s, within 25% of each other, against 250-315
# quiet). The share showed it: 0.5 of the cores against 0.9-0.99 quiet. A compute-bound
# matmul's speed follows its share, so a quiet best trial is at most ~20% below the peak.
QUIET_SHARE = 0.8


@dataclasses.dataclass(frozen=True)
class Trial:
    seconds: float  # wall time of one matmul
    cpu_seconds: float  # this process's CPU time over the same span, all threads


@dataclasses.dataclass(frozen=True)
class Measurement:
    flops_per_s: float  # the best trial's
    quiet: bool  # the best trial had the cores to itself: worth caching


def cache_path() -> Path:
    return user_cache_dir() / "cpu_peak.json"


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
    cached = cached_cpu_peak()
    return cached if cached is not None else _measure()


def remeasured_cpu_peak() -> float:
    """Measured again (a run went faster than the peak it was given), at least the cached value.
    The caller sees to it that nothing else of its own runs meanwhile (a training step)."""
    return max(_measure(), cached_cpu_peak() or 0.0)


def cached_cpu_peak() -> float | None:
    """This machine's cached peak; None if there is none (or it is another machine's)."""
    try:
        cached = json.loads(cache_path().read_text())
        return float(cached["flops_per_s"]) if cached.get("key") == machine_key() else None
    except (OSError, ValueError, KeyError, AttributeError):  # absent, half-written or foreign
        return None


def _measure() -> float:
    """A fresh measurement, cached if quiet and above the cached value."""
    measurement = measure_matmul_peak()
    if not measurement.quiet:
        logger.warning("the CPU was busy while its peak was measured (%.3g FLOP/s): this run "
                       "uses it, the cache does not keep it", measurement.flops_per_s)
    elif measurement.flops_per_s > (cached_cpu_peak() or 0.0):
        _write_cache(measurement.flops_per_s)
    return measurement.flops_per_s


def _write_cache(flops_per_s: float) -> None:
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # readers never see half a file
        partial.write_text(json.dumps({"key": machine_key(), "flops_per_s": flops_per_s}) + "\n")
        partial.replace(path)
    except OSError:
        pass  # a read-only home: measure again next time


def measure_matmul_peak(size: int = SIZE, trials: int = TRIALS) -> Measurement:
    """The best of `trials` timed (size x size) float32 matmuls on the first device."""
    best = min(time_trials(size=size, trials=trials), key=lambda t: t.seconds)
    share = best.cpu_seconds / (best.seconds * usable_cores())
    return Measurement(flops_per_s=2.0 * size**3 / best.seconds, quiet=share >= QUIET_SHARE)


def time_trials(*, size: int, trials: int) -> list[Trial]:
    import jax
    import jax.numpy as jnp

    a = jax.device_put(jnp.ones((size, size), jnp.float32), jax.devices()[0])
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()  # compile
    out = []
    for _ in range(trials):
        started, cpu_started = time.perf_counter(), time.process_time()
        matmul(a).block_until_ready()
        out.append(Trial(seconds=time.perf_counter() - started,
                         cpu_seconds=time.process_time() - cpu_started))
    return out


def usable_cores() -> float:
    """The CPUs this process may run on, capped by a cgroup v2 CPU quota (a container's limit)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        return min(cores, int(quota) / int(period))
    except (OSError, ValueError):  # no quota ("max"), no cgroup v2, not Linux
        return cores
