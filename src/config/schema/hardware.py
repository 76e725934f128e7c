"""Schema of conf/hardware: the facts compose/ needs about the target machine.

A profile may *prefer* choices of other groups (kernel, remat, compute dtype); they are used
only where that choice is left on `auto`, so a command-line choice always wins.
"""

import dataclasses
import enum
from typing import Any

from omegaconf import MISSING

from hydralearn.config.schema.kernel import Kernel
from hydralearn.config.schema.remat import RematPolicy

AUTO = "auto"


class Platform(enum.Enum):
    cpu = "cpu"
    gpu = "gpu"
    tpu = "tpu"
    neuron = "neuron"


@dataclasses.dataclass(kw_only=True)
class HardwareConfig:
    name: str = MISSING
    platform: Platform = MISSING
    hosts: int = 1
    devices_per_host: int = -1  # -1: as many as JAX sees on this host
    device_memory_gib: float = MISSING
    # Peak dense FLOP/s per device, for MFU: the published bf16 peak of an accelerator, or
    # `auto` on CPU: a float32 XLA matmul measured once per machine (compose/peak.py).
    peak_flops_per_device: Any = dataclasses.field(default=MISSING, metadata={"json_schema": {
        "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"const": AUTO}]}})
    # Used where kernel.name / remat.policy / model.compute_dtype are auto.
    preferred_kernel: Kernel = Kernel.xla
    preferred_remat: RematPolicy = RematPolicy.none
    preferred_compute_dtype: str = "float32"
    # Compiler options, one entry per flag (override one: hardware.xla_flags.NAME=VALUE).
    # Applied before the backend starts (compose/xla.py); recorded in resolved_config.yaml.
    xla_flags: dict[str, Any] = dataclasses.field(default_factory=dict)
    # What `hydralearn-plan --compile` compiles for without the hardware (compose/target.py):
    # a TPU generation (v5p, v6e, v5e), a GPU target (h100, h200, b200, or the path of a
    # GpuTargetConfigProto text file); empty where no deviceless compiler exists (CPU
    # profiles compile for simulated host devices).
    compile_target: str = ""

    def errors(self) -> list[str]:
        out = []
        if self.hosts < 1:
            out.append(f"hardware.hosts={self.hosts} must be at least 1")
        if self.devices_per_host == 0 or self.devices_per_host < -1:
            out.append(f"hardware.devices_per_host={self.devices_per_host} must be positive or -1 (auto)")
        peak = self.peak_flops_per_device
        if peak == AUTO and self.platform is not Platform.cpu:
            out.append(f"hardware.peak_flops_per_device=auto is measured on CPU hosts only; give "
                       f"the {self.name} device's published peak (FLOP/s)")
        elif peak != AUTO and (isinstance(peak, bool) or not isinstance(peak, (int, float)) or peak <= 0):
            out.append(f"hardware.peak_flops_per_device={peak!r} must be a positive number or auto")
        if self.preferred_kernel is Kernel.auto:
            out.append("hardware.preferred_kernel=auto is not valid; name a kernel")
        if self.preferred_remat is RematPolicy.auto:
            out.append("hardware.preferred_remat=auto is not valid; name a policy")
        if self.preferred_compute_dtype not in ("float32", "bfloat16", "float16"):
            out.append(f"hardware.preferred_compute_dtype={self.preferred_compute_dtype!r} must be "
                       "float32, bfloat16 or float16")
        return out

    @property
    def device_memory_bytes(self) -> float:
        return self.device_memory_gib * 2**30
