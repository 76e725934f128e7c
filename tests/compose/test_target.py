"""Compile targets of the hardware profiles: TPU slice shapes against Cloud TPU's published
shapes, GPU topologies, the environment a compile gets, one-line refusals, and meshes laid out
on compile-only TPU devices (libtpu from the test extra)."""

import importlib.util

import numpy as np
import pytest

from hydralearn.compose import target
from hydralearn.compose.mesh import make_mesh
from hydralearn.config.schema import Platform
from tests.conftest import tiny_config

# Slice shapes as Cloud TPU names them (docs: "TPU v5p" and "TPU v6e" pages), by chip count.
V5P = {4: "2x2x1", 8: "2x2x2", 16: "2x2x4", 32: "2x4x4", 64: "4x4x4", 128: "4x4x8", 256: "4x8x8",
       512: "8x8x8", 1024: "8x8x16"}
V6E = {4: "2x2", 8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16", 256: "16x16"}


@pytest.mark.parametrize("chips", sorted(V5P))
def test_v5p_slices_have_cloud_tpu_shapes(chips):
    assert target.tpu_topology("v5p", chips=chips, per_host=4) == (f"v5p:{V5P[chips]}", 1)


@pytest.mark.parametrize("chips", sorted(V6E))
def test_v6e_slices_have_cloud_tpu_shapes(chips):
    assert target.tpu_topology("v6e", chips=chips, per_host=4) == (f"v6e:{V6E[chips]}", 1)


def test_beyond_the_largest_v6e_slice_takes_several():
    assert target.tpu_topology("v6e", chips=1024, per_host=4) == ("v6e:16x16", 4)
    with pytest.raises(target.TargetUnavailable, match="a v6e host has 4 chips; set hardware.devices_per_host=4"):
        target.tpu_topology("v6e", chips=16, per_host=8)
    with pytest.raises(target.TargetUnavailable, match="12 v5p chips do not form TPU slices"):
        target.tpu_topology("v5p", chips=12, per_host=4)


def hardware(*overrides, devices=8):
    return tiny_config(*overrides, device_count=devices).hardware


def test_each_profile_names_its_target():
    h100 = target.target_for(hardware("hardware=gpu_h100", "hardware.hosts=64", "data.batch_size=512", devices=512))
    assert (h100.name, h100.topology, h100.device_count) == ("h100", "1x64x8", 512)
    v5p = target.target_for(hardware("hardware=tpu_v5p", "hardware.hosts=4", "data.batch_size=16",
                                     devices=16))
    assert (v5p.topology, v5p.slices, v5p.describe()) == ("v5p:2x2x4", 1, "v5p v5p:2x2x4 (16 devices)")
    assert target.target_for(hardware()).platform is Platform.cpu
    for gpu in ("h100", "h200", "b200"):  # every GPU profile's target config ships
        assert "gpu_device_info" in target.gpu_target_config(gpu)


def test_trainium_says_there_is_no_deviceless_compiler():
    with pytest.raises(target.TargetUnavailable) as refused:
        target.target_for(hardware("hardware=trn2", "data.batch_size=64", devices=64))
    assert str(refused.value).startswith("hardware=trn2 (neuron) has no deviceless compiler on the package index")


def test_a_missing_compiler_names_the_extra_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(target.TargetUnavailable, match=r"pip install 'hydralearn\[aot-tpu\]'"):
        target.target_for(hardware("hardware=tpu_v5p", "data.batch_size=4", devices=4))
    with pytest.raises(target.TargetUnavailable, match=r"pip install 'hydralearn\[aot-gpu\]'"):
        target.target_for(hardware("hardware=gpu_h100"))


def test_an_unknown_gpu_target_is_refused_naming_the_shipped_ones():
    with pytest.raises(target.TargetUnavailable, match=r"compile_target=a100 is neither a shipped GPU "
                                                       r"target \(b200, h100, h200\)"):
        target.target_for(hardware("hardware=gpu_h100", "hardware.compile_target=a100"))


def test_flags_reach_the_compiler_where_a_run_puts_them(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    monkeypatch.delenv("LIBTPU_INIT_ARGS", raising=False)
    gpu = hardware("hardware=gpu_h100")
    env = target.environment(gpu, target.target_for(gpu))
    assert env["JAX_PLATFORMS"] == "cpu"
    assert env["XLA_FLAGS"].startswith("--xla_dump_to=/tmp/x --xla_gpu_enable_latency_hiding_scheduler=true")
    tpu = hardware("hardware=tpu_v5p", "data.batch_size=4", devices=4)
    env = target.environment(tpu, target.target_for(tpu))
    assert "--xla_tpu_enable_async_collective_fusion=true" in env["LIBTPU_INIT_ARGS"]
    assert env["TPU_SKIP_MDS_QUERY"] == "1" and "XLA_FLAGS" not in env


def test_multi_host_tpu_meshes_lay_out_on_the_torus(monkeypatch):
    """4 hosts of one v5p slice (one ICI torus) and 2 v6e slices (hybrid over DCN): every
    device once, the data axis across slices."""
    monkeypatch.setenv("TPU_SKIP_MDS_QUERY", "1")  # as compiles run (target.environment)
    monkeypatch.setenv("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    v5p = target.Target(platform=Platform.tpu, name="v5p", hosts=4, devices_per_host=4,
                        topology="v5p:2x2x4")
    devices = target.compile_devices(v5p)
    mesh = make_mesh({"data": 2, "fsdp": 8}, devices)
    assert sorted(d.id for d in mesh.devices.flat) == sorted(d.id for d in devices)
    topology, slices = target.tpu_topology("v6e", chips=512, per_host=4)
    v6e = target.Target(platform=Platform.tpu, name="v6e", hosts=128, devices_per_host=4,
                        topology=topology, slices=slices)
    mesh = make_mesh({"data": 2, "fsdp": 256}, target.compile_devices(v6e))
    slice_of = np.vectorize(lambda d: d.slice_index)(mesh.devices)
    assert (slice_of[0] == 0).all() and (slice_of[1] == 1).all()
