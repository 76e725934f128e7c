"""The real accelerator a hardware profile names, as compile-only devices (no hardware needed).

`hydralearn-plan --compile` lowers and compiles the training step on these devices, so XLA's
own compiler for the target checks the sharding, the attention kernel, the XLA flags and the
memory of the program `hydralearn-train` would run there:

- TPU (`hardware.compile_target: v5p | v6e | v5e`): libtpu's compile-only topologies
  (`pip install 'hydralearn[aot-tpu]'`). hosts x devices_per_host chips become a slice shape
  (v5p 3D, v6e/v5e 2D); beyond the largest slice, several slices.
- NVIDIA GPU (`compile_target: h100 | h200 | b200` or the path of a GpuTargetConfigProto text
  file): the CUDA PJRT plugin's deviceless compiler (`pip install 'hydralearn[aot-gpu]'`),
  hosts x devices_per_host GPUs. XLA's GPU compiler does not autotune without a GPU, so this
  checks sharding, lowering and memory, not speed.
- CPU: simulated host devices (`--xla_force_host_platform_device_count`).
- Trainium (and any profile without a compile_target): no public deviceless compiler exists on
  the package index; planning says so instead of compiling something else.

The compile runs in a child process (review/compiled.py) whose environment is `environment()`:
the profile's XLA flags reach the target compiler exactly as they reach a run (compose/xla.py).
"""

import dataclasses
import importlib.util
import math
import os
from pathlib import Path

from hydralearn.compose import xla
from hydralearn.config.schema import HardwareConfig, Platform

TARGETS_DIR = Path(__file__).resolve().parent / "targets"


@dataclasses.dataclass(frozen=True, kw_only=True)
class TpuGeneration:
    chips_per_host: tuple[int, ...]  # the host's chip block in the torus (libtpu's host bounds)
    max_slice: tuple[int, ...]  # the largest slice shape; more chips take several slices
    chip_config: str | None = None  # libtpu's chip_config_name (v5p: one device per chip)


TPU_GENERATIONS = {
    "v5p": TpuGeneration(chips_per_host=(2, 2, 1), max_slice=(16, 16, 24), chip_config="megacore"),
    "v6e": TpuGeneration(chips_per_host=(2, 2), max_slice=(16, 16)),
    "v5e": TpuGeneration(chips_per_host=(2, 2), max_slice=(16, 16)),
}
EXTRA = {Platform.tpu: "aot-tpu", Platform.gpu: "aot-gpu"}


class TargetUnavailable(RuntimeError):
    """The profile's target cannot be compiled for on this machine; the message says why."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Target:
    platform: Platform
    name: str  # the profile's compile_target (cpu: "cpu")
    hosts: int
    devices_per_host: int
    topology: str  # as libtpu / the CUDA plugin / XLA_FLAGS take it, e.g. v5p:2x2x4, 1x64x8
    slices: int = 1

    @property
    def device_count(self) -> int:
        return self.hosts * self.devices_per_host

    def describe(self) -> str:
        slices = f" x {self.slices} slices" if self.slices > 1 else ""
        return f"{self.name} {self.topology}{slices} ({self.device_count} devices)"


def target_for(hardware: HardwareConfig) -> Target:
    """The compile target of a profile planned for hosts x devices_per_host devices."""
    per_host = max(hardware.devices_per_host, 1)
    common = dict(platform=hardware.platform, hosts=hardware.hosts, devices_per_host=per_host)
    if hardware.platform is Platform.cpu:
        return Target(name="cpu", topology=f"{hardware.hosts * per_host} host devices", **common)
    name = hardware.compile_target
    if not name:
        raise TargetUnavailable(
            f"hardware={hardware.name} ({hardware.platform.value}) has no deviceless compiler on the "
            "package index, so hydralearn-plan --compile cannot check it; the formula estimate "
            "above is all there is until it runs on the hardware")
    _require_extra(hardware.platform, hardware.name)
    if hardware.platform is Platform.tpu:
        topology, slices = tpu_topology(name, chips=hardware.hosts * per_host, per_host=per_host)
        return Target(name=name, topology=topology, slices=slices, **common)
    gpu_target_config(name)  # refuse an unknown name now, not in the child
    # The CUDA plugin's topology string: slices x hosts x devices per host.
    return Target(name=name, topology=f"1x{hardware.hosts}x{per_host}", **common)


def tpu_topology(generation: str, *, chips: int, per_host: int) -> tuple[str, int]:
    """("v5p:2x2x4", 1) for 16 v5p chips: a torus grown from the host block by doubling its
    shortest side, as Cloud TPU shapes grow; beyond the largest slice, equal slices."""
    spec = TPU_GENERATIONS.get(generation)
    if spec is None:
        raise TargetUnavailable(f"hardware.compile_target={generation} is not a TPU generation "
                                f"hydralearn knows; use one of {', '.join(TPU_GENERATIONS)}")
    block = math.prod(spec.chips_per_host)
    if per_host != block or chips % block:
        raise TargetUnavailable(f"a {generation} host has {block} chips; set "
                                f"hardware.devices_per_host={block}")
    slice_chips = min(chips, math.prod(spec.max_slice))
    if chips % slice_chips or slice_chips & (slice_chips - 1):
        raise TargetUnavailable(f"{chips} {generation} chips do not form TPU slices (a power of two "
                                f"of at most {math.prod(spec.max_slice)} chips each)")
    shape = list(spec.chips_per_host)
    while math.prod(shape) < slice_chips:
        shortest = min(range(len(shape)), key=lambda i: (shape[i], -i))
        shape[shortest] *= 2
    return f"{generation}:{'x'.join(map(str, shape))}", chips // slice_chips


def gpu_target_config(name: str) -> str:
    """The GpuTargetConfigProto text of a shipped GPU (compose/targets/<name>.txtpb) or a file."""
    path = TARGETS_DIR / f"{name}.txtpb"
    if not path.is_file():
        path = Path(name).expanduser()
    if not path.is_file():
        shipped = sorted(p.stem for p in TARGETS_DIR.glob("*.txtpb"))
        raise TargetUnavailable(f"hardware.compile_target={name} is neither a shipped GPU target "
                                f"({', '.join(shipped)}) nor a GpuTargetConfigProto text file")
    return path.read_text()


def _require_extra(platform: Platform, profile: str) -> None:
    module = "libtpu" if platform is Platform.tpu else "jax_plugins.xla_cuda12"
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise TargetUnavailable(
            f"compiling for hardware={profile} needs the {platform.value} compiler, which is not "
            f"installed; pip install 'hydralearn[{EXTRA[platform]}]' (bash scripts/bootstrap.sh "
            f"{EXTRA[platform]})")


def environment(hardware: HardwareConfig, target: Target) -> dict[str, str]:
    """Environment variables of the compiling child process: the profile's XLA flags where a
    run puts them, the host CPU as JAX's only backend, and libtpu's cloud probing off."""
    env = {"JAX_PLATFORMS": "cpu"}
    flags = dict(hardware.xla_flags)
    if target.platform is Platform.cpu:
        flags["xla_force_host_platform_device_count"] = target.device_count
    if target.platform is Platform.tpu:
        # No TPU VM metadata server here; a second libtpu process (tests in parallel) is fine.
        env |= {"TPU_SKIP_MDS_QUERY": "1", "ALLOW_MULTIPLE_LIBTPU_LOAD": "1"}
    # After any flags already in this environment, as for a run (compose/xla.py).
    return env | xla.apply(flags, platform=target.platform, environ=dict(os.environ))


def compile_devices(target: Target) -> list:
    """The target's devices (compile-only for TPU and GPU). Call in the compiling process."""
    import jax
    from jax.experimental import topologies

    if target.platform is Platform.cpu:
        return jax.devices()[:target.device_count]
    if target.platform is Platform.tpu:
        spec = TPU_GENERATIONS[target.name]
        options = {"chips_per_host_bounds": spec.chips_per_host + (1,) * (3 - len(spec.chips_per_host))}
        if spec.chip_config:
            options["chip_config_name"] = spec.chip_config
        if target.slices > 1:
            options["num_slices"] = target.slices
        return topologies.get_topology_desc(target.topology, "tpu", **options).devices
    return topologies.get_topology_desc(platform="cuda", target_config=gpu_target_config(target.name),
                                        topology=target.topology).devices
