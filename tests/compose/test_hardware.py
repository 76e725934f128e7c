"""Hardware profiles: every one validates and plans; preferences fill only autos; the real
host is checked against the profile."""

import pytest

from hydralearn import CONF_DIR
from hydralearn.config import compose as compose_config
from hydralearn.compose.resolve import resolve
from hydralearn.compose.hardware import Host, Platform, resolve_hardware
from hydralearn.errors import ConfigError

PROFILES = sorted(p.stem for p in (CONF_DIR / "hardware").glob("*.yaml"))


def test_the_issue_profiles_exist():
    assert {"cpu", "gpu_h100", "gpu_h200", "gpu_b200", "tpu_v5p", "tpu_v6e", "trn2"} <= set(PROFILES)


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_validates_and_plans_llama2_7b(profile):
    config = compose_config.load([f"hardware={profile}", "model=llama2_7b", "data.batch_size=64"])
    hw = config.hardware
    assert hw.device_memory_gib > 0
    assert hw.peak_flops_per_device == "auto" if profile == "cpu" else hw.peak_flops_per_device > 0
    devices = 8 if hw.devices_per_host == -1 else None
    resolved = resolve(config, device_count=devices)
    # Every auto is concrete in what would be saved.
    assert resolved.kernel.name.value != "auto" and resolved.remat.policy.value != "auto"
    assert -1 not in resolved.mesh.axes.values() and resolved.hardware.devices_per_host > 0


def test_hosts_override_scales_the_plan():
    config = compose_config.load(["hardware=gpu_h100", "hardware.hosts=4", "model=llama2_7b",
                                  "data.batch_size=64"])
    resolved = resolve(config)
    assert resolved.hardware.devices_per_host == 8
    axes = resolved.mesh.axes
    assert axes["data"] * axes["fsdp"] == 32 and axes["data"] >= 4  # data spans the 4 hosts


def test_preferences_fill_autos_and_choices_win():
    auto = resolve(compose_config.load(["hardware=tpu_v6e"]))
    assert auto.remat.policy.value == "full"  # tpu_v6e's preferred_remat
    chosen = resolve(compose_config.load(["hardware=tpu_v6e", "remat=none"]))
    assert chosen.remat.policy.value == "none"


def test_bad_preference_is_refused():
    with pytest.raises(ConfigError, match="hardware.preferred_kernel='flash' is not valid; choose one "
                                          "of: auto, xla, cudnn, pallas, splash"):
        compose_config.load(["hardware.preferred_kernel=flash"])
    with pytest.raises(ConfigError, match="hardware.preferred_kernel=auto is not valid; name a kernel"):
        compose_config.load(["hardware.preferred_kernel=auto"])


def test_profile_must_match_the_real_host():
    config = compose_config.load(["hardware=gpu_h100"])
    host = Host(platform=Platform.cpu, device_count=1, device_kind="cpu", actual=True)
    _, errors = resolve_hardware(config.hardware, host)
    assert any("hardware=gpu_h100 targets platform gpu but this host has 1 cpu device(s)" in e
               for e in errors)
    assert any("hardware.devices_per_host=8 but there are 1 devices per host" in e for e in errors)
    with pytest.raises(ConfigError, match="targets platform gpu"):
        resolve(config, host=host)


def test_current_host_is_what_jax_sees():
    host = Host.current()
    assert host.platform is Platform.cpu and host.device_count == 8 and host.actual
    assert "pinned_host" in host.memory_kinds  # host offload works on this backend
