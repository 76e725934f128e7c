"""Hardware profiles (conf/hardware): the facts compose/ needs about the target machine."""

import dataclasses
import enum
from typing import Any


class Platform(enum.Enum):
    CPU = "cpu"
    GPU = "gpu"
    TPU = "tpu"
    NEURON = "neuron"


@dataclasses.dataclass(kw_only=True, frozen=True)
class HardwareConfig:
    name: str
    platform: Platform
    hosts: int = 1
    devices_per_host: int = -1  # -1: as many as JAX sees on this host
    device_memory_gib: float
    # Peak dense FLOP/s per device used for MFU: bf16 spec for accelerators, the measured
    # float32 matmul peak for CPU hosts.
    peak_flops_per_device: float
    xla_flags: dict[str, Any] = dataclasses.field(default_factory=dict)

    def errors(self) -> list[str]:
        out = []
        if self.hosts < 1:
            out.append(f"hardware.hosts={self.hosts} must be at least 1")
        if self.devices_per_host == 0 or self.devices_per_host < -1:
            out.append(f"hardware.devices_per_host={self.devices_per_host} must be positive or -1 (auto)")
        if self.peak_flops_per_device <= 0:
            out.append(f"hardware.peak_flops_per_device={self.peak_flops_per_device} must be positive")
        return out
