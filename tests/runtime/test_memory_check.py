"""The memory pre-check against figures read independently (/proc/meminfo, arithmetic)."""

from pathlib import Path

import jax
import pytest

from hydralearn.errors import ConfigError
from hydralearn.runtime.memory_check import DeviceMemory, check_fits, device_memory, host_ram_bytes

GIB = 2**30


def _meminfo_total() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="Linux only")
def test_host_ram_is_at_most_physical_memory():
    ram = host_ram_bytes()
    # MemTotal excludes the kernel's reserved pages; sysconf counts them: within 5%.
    assert 0 < ram <= _meminfo_total() * 1.05


def test_cpu_devices_share_the_host_ram():
    devices = jax.devices()  # 8 simulated CPU devices in this test process
    memory = device_memory(devices)
    assert memory.bytes_per_device == host_ram_bytes() // len(devices)
    assert f"shared by {len(devices)} CPU device(s)" in memory.source


def test_an_estimate_over_the_device_is_refused_with_its_parts_and_fixes():
    estimate = {"params": 2 * GIB, "optimizer": 4 * GIB, "grads": 2 * GIB, "activations": 40 * GIB}
    estimate["total"] = sum(estimate.values())
    device = DeviceMemory(bytes_per_device=24 * GIB, source="host RAM 24.0 GiB")
    with pytest.raises(ConfigError) as error:
        check_fits(estimate, device, skip=False)
    first, fixes = error.value.errors
    assert "needs about 48.0 GiB per device" in first and "activations 40.0 GiB" in first
    assert "a device has 24.0 GiB (host RAM 24.0 GiB)" in first
    assert "data.batch_size" in fixes and "remat=full" in fixes and "mesh.axes.fsdp" in fixes
    check_fits(estimate, device, skip=True)  # the override: try anyway
    check_fits(estimate, DeviceMemory(bytes_per_device=0, source="not reported"), skip=False)
    check_fits({**estimate, "total": 24 * GIB}, device, skip=False)  # exactly full still fits
