"""The host a run has (`Host`), and the hardware profile (config/schema/hardware.py) checked
against it. A profile's preferred choices are consumed only where a group is left on `auto`,
so a command-line choice always wins (`hardware=gpu_h100 kernel=xla` runs xla).
"""

import dataclasses

from hydralearn.config.schema import HardwareConfig, Platform


@dataclasses.dataclass(kw_only=True, frozen=True)
class Host:
    """What this run actually has (or, when planning, what the profile says it will have)."""

    platform: Platform
    device_count: int  # across all processes
    process_count: int = 1
    device_kind: str = ""
    memory_kinds: tuple[str, ...] = ("device",)
    actual: bool = False  # True: measured from JAX; False: assumed from the hardware profile

    @classmethod
    def current(cls) -> "Host":
        """The backend JAX initialised in this process (call after XLA flags are applied)."""
        import jax

        device = jax.devices()[0]
        backend = jax.default_backend()
        platform = Platform.gpu if backend in ("gpu", "cuda", "rocm") else Platform(backend)
        try:
            kinds = tuple(m.kind for m in device.addressable_memories())
        except Exception:  # noqa: BLE001 - backends without memory spaces have only 'device'
            kinds = ("device",)
        return cls(platform=platform, device_count=jax.device_count(),
                   process_count=jax.process_count(), device_kind=device.device_kind,
                   memory_kinds=kinds, actual=True)

    @classmethod
    def assumed(cls, hardware: HardwareConfig, *, device_count: int | None = None) -> "Host":
        """The host a profile describes, for planning and tests without that hardware."""
        if device_count is None:
            if hardware.devices_per_host == -1:
                raise ValueError("hardware.devices_per_host=-1 needs a device count to plan for")
            device_count = hardware.hosts * hardware.devices_per_host
        # Every accelerator JAX supports can offload to pinned host memory; so can CPU.
        return cls(platform=hardware.platform, device_count=device_count,
                   process_count=hardware.hosts, device_kind=hardware.name,
                   memory_kinds=("device", "pinned_host"))

    def describe(self) -> str:
        kind = f" ({self.device_kind})" if self.device_kind not in ("", self.platform.value) else ""
        return f"{self.device_count} {self.platform.value} device(s){kind}"


def resolve_hardware(hardware: HardwareConfig, host: Host) -> tuple[HardwareConfig, list[str]]:
    """The profile with devices_per_host concrete, and any contradiction with the real host."""
    errors = []
    if host.actual and host.platform is not hardware.platform:
        errors.append(f"hardware={hardware.name} targets platform {hardware.platform.value} but this "
                      f"host has {host.describe()}; choose hardware={host.platform.value} or a "
                      f"{host.platform.value} profile")
    if host.actual and hardware.hosts != host.process_count:
        errors.append(f"hardware.hosts={hardware.hosts} but this run has {host.process_count} "
                      f"process(es); set hardware.hosts={host.process_count}")
    per_host = host.device_count // max(host.process_count, 1)
    if hardware.devices_per_host not in (-1, per_host):
        errors.append(f"hardware.devices_per_host={hardware.devices_per_host} but there are "
                      f"{per_host} devices per host; set hardware.devices_per_host={per_host} or -1")
    return dataclasses.replace(hardware, devices_per_host=per_host), errors
