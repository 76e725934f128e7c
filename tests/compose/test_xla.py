"""XLA options: formatted per platform, accepted by this jaxlib, applied before the backend
starts, and recorded with every other resolved auto in the run's saved config."""

import os
import subprocess
import sys

import pytest
import yaml

from hydralearn.config import compose as compose_config
from hydralearn.compose import xla
from hydralearn.compose.hardware import Platform
from tests.compose.cli_run import run_cli

GPU_PROFILES = ["gpu_h100", "gpu_h200", "gpu_b200"]


def test_flag_string_and_target_variable():
    flags = {"xla_gpu_enable_latency_hiding_scheduler": True, "xla_gpu_enable_command_buffer": None,
             "xla_gpu_all_reduce_combine_threshold_bytes": 134217728}
    assert xla.flag_string(flags) == ("--xla_gpu_enable_latency_hiding_scheduler=true "
                                      "--xla_gpu_enable_command_buffer= "
                                      "--xla_gpu_all_reduce_combine_threshold_bytes=134217728")
    environ = {"XLA_FLAGS": "--xla_dump_to=/tmp/x"}
    assert xla.apply({"a": 1}, platform=Platform.gpu, environ=environ) == {
        "XLA_FLAGS": "--xla_dump_to=/tmp/x --a=1"}  # the user's flags kept, ours after
    assert xla.apply({"b": False}, platform=Platform.tpu, environ=environ) == {
        "LIBTPU_INIT_ARGS": "--b=false"}
    assert xla.apply({}, platform=Platform.cpu, environ=environ) == {}


def test_applying_after_the_backend_started_is_refused():
    import jax

    jax.devices()
    with pytest.raises(xla.BackendAlreadyStarted):
        xla.apply({"xla_cpu_enable_fast_math": False}, platform=Platform.cpu)


def test_one_flag_is_overridable_and_removable():
    config = compose_config.load(["hardware=gpu_h100",
                                  "hardware.xla_flags.xla_gpu_enable_latency_hiding_scheduler=false",
                                  "~hardware.xla_flags.xla_gpu_enable_pipelined_all_reduce"])
    flags = config.hardware.xla_flags
    assert flags["xla_gpu_enable_latency_hiding_scheduler"] is False
    assert "xla_gpu_enable_pipelined_all_reduce" not in flags
    assert flags["xla_gpu_all_reduce_combine_threshold_bytes"] == 134217728


def _backend_starts_with(flags: str) -> bool:
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    code = "import jax; jax.devices()"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).returncode == 0


def test_gpu_profile_flags_are_known_to_this_jaxlib():
    """XLA aborts on an unknown flag; jaxlib parses GPU flags on any backend, so check here."""
    flags = {}
    for profile in GPU_PROFILES:
        flags |= compose_config.load([f"hardware={profile}"]).hardware.xla_flags
    assert flags and _backend_starts_with(xla.flag_string(flags))
    assert not _backend_starts_with("--xla_no_such_flag_anywhere=1")  # the check can fail


@pytest.mark.slow
def test_autos_and_flags_are_applied_and_recorded(tmp_path):
    """A flag that changes the device count proves it reached the backend before it started."""
    result = run_cli(tmp_path, "+hardware.xla_flags.xla_force_host_platform_device_count=2")
    assert result.returncode == 0, result.stderr
    saved = yaml.safe_load((tmp_path / "resolved_config.yaml").read_text())
    assert saved["hardware"]["xla_flags"] == {"xla_force_host_platform_device_count": 2}
    assert saved["mesh"] == {"mode": "fixed", "axes": {"data": 2, "fsdp": 1, "tensor": 1,
                                                       "expert": 1, "seq": 1}}
    assert saved["kernel"]["name"] == "xla" and saved["remat"]["policy"] == "none"
    assert saved["hardware"]["devices_per_host"] == 2
