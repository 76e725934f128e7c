"""Refuse, before compiling, a step whose planned memory cannot fit on the device.

The planner's per-device estimate (hydralearn-plan: parameters, optimizer state, gradients
and the activations the remat policy keeps) is compared with what one device has: the memory
JAX reports for an accelerator, or this host's RAM shared by its CPU devices. Only a clear
overshoot is refused; `trainer.skip_memory_check=true` tries anyway.
"""

import dataclasses
import os
from pathlib import Path

from hydralearn.errors import ConfigError

GIB = 2**30
# Cgroup v2 and v1 limits: a container may have far less memory than the host reports.
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


@dataclasses.dataclass(frozen=True)
class DeviceMemory:
    bytes_per_device: int
    source: str  # where the figure comes from, for the error message


def host_ram_bytes() -> int:
    """Physical RAM of this host, or the cgroup limit of this process if lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in _CGROUP_LIMITS:
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def device_memory(devices) -> DeviceMemory:
    """What one of `devices` (this process's local devices) can hold."""
    device = devices[0]
    if device.platform == "cpu":
        ram = host_ram_bytes()
        return DeviceMemory(bytes_per_device=ram // len(devices),
                            source=f"host RAM {ram / GIB:.1f} GiB shared by {len(devices)} CPU device(s)")
    stats = device.memory_stats() or {}
    limit = stats.get("bytes_limit")
    if not limit:
        return DeviceMemory(bytes_per_device=0, source=f"{device.device_kind}: not reported")
    return DeviceMemory(bytes_per_device=int(limit), source=f"{device.device_kind} memory reported by JAX")


def check_fits(estimate: dict[str, int], memory: DeviceMemory, *, skip: bool) -> None:
    """ConfigError if the estimate's `total` bytes per device exceed the device's memory.

    `estimate`: bytes per device by part (params, optimizer, grads, activations, total), as
    `MemoryEstimate.as_dict()` of the planner gives them. Unknown device memory passes.
    """
    total = estimate["total"]
    if skip or not memory.bytes_per_device or total <= memory.bytes_per_device:
        return
    parts = ", ".join(f"{k} {v / GIB:.1f}" for k, v in estimate.items() if k != "total")
    raise ConfigError([
        f"the training step needs about {total / GIB:.1f} GiB per device ({parts} GiB; the "
        f"hydralearn-plan estimate) but a device has {memory.bytes_per_device / GIB:.1f} GiB "
        f"({memory.source})",
        "to fit: lower data.batch_size (or data.seq_len), set remat=full, or shard over more "
        "devices (mesh.axes.fsdp=N); to try anyway: trainer.skip_memory_check=true"])
