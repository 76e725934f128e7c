"""Mesh shapes: fixed and -1 axes, the auto choice, host placement, and impossible meshes."""

import jax
import numpy as np
import pytest

from hydralearn.config import compose as compose_config
from hydralearn.compose.resolve import resolve
from hydralearn.compose.mesh import MeshFacts, auto_axes, host_split, make_mesh, resolve_axes
from hydralearn.errors import ConfigError
from tests.compose.cli_run import run_cli
from tests.conftest import tiny_config

GIB = 2**30
AXES = {"data": -1, "fsdp": -1, "tensor": 1, "expert": 1, "seq": 1}
RULE_AXES = frozenset({"data", "fsdp", "tensor", "expert"})


def facts(*, devices: int, per_host: int = 8, params: float, memory_gib: float = 80) -> MeshFacts:
    return MeshFacts(device_count=devices, devices_per_host=per_host, train_bytes=16 * params,
                     device_memory_bytes=memory_gib * GIB, used_axes=RULE_AXES)


def test_small_model_gets_pure_data_parallelism():
    assert auto_axes(AXES, facts(devices=8, params=1e6)) == {
        "data": 8, "fsdp": 1, "tensor": 1, "expert": 1, "seq": 1}


def test_large_model_gets_the_smallest_fsdp_that_fits():
    # 7e9 params * 16 B = 104 GiB; 40% of 80 GiB = 32 GiB per device -> 4-way fsdp.
    shape = auto_axes(AXES, facts(devices=8, params=7e9))
    assert (shape["data"], shape["fsdp"]) == (2, 4)
    assert 16 * 7e9 / shape["fsdp"] <= 0.4 * 80 * GIB


def test_multi_host_keeps_fsdp_inside_a_host_and_data_across():
    shape = auto_axes(AXES, facts(devices=32, per_host=8, params=7e9))
    assert (shape["data"], shape["fsdp"]) == (8, 4)
    per_host, across = host_split(shape, 4)
    assert across == {"data": 4, "fsdp": 1, "tensor": 1, "expert": 1, "seq": 1}
    assert per_host["fsdp"] == 4 and per_host["data"] == 2


def test_model_too_big_for_a_host_shards_across_hosts():
    # 70e9 * 16 B needs 33+ devices of 80 GiB: all 64 devices on fsdp.
    shape = auto_axes(AXES, facts(devices=64, params=70e9))
    assert (shape["data"], shape["fsdp"]) == (1, 64)


def test_auto_keeps_fixed_sizes_as_constraints():
    shape = auto_axes({**AXES, "tensor": 2}, facts(devices=8, params=1e6))
    assert shape == {"data": 4, "fsdp": 1, "tensor": 2, "expert": 1, "seq": 1}


def test_one_inferred_axis_and_impossible_products():
    assert resolve_axes({"data": 2, "fsdp": -1}, 8) == {"data": 2, "fsdp": 4}
    with pytest.raises(ValueError, match="multiply to 6 but there are 8 devices"):
        resolve_axes({"data": 2, "fsdp": 3}, 8)
    with pytest.raises(ValueError, match="multiply to 3 but there are 8 devices"):
        resolve_axes({"data": 3, "fsdp": -1}, 8)


def test_make_mesh_puts_the_first_axis_outermost():
    mesh = make_mesh({"data": 2, "fsdp": 2, "tensor": 2, "expert": 1, "seq": 1}, jax.devices())
    assert mesh.shape == {"data": 2, "fsdp": 2, "tensor": 2, "expert": 1, "seq": 1}
    ids = np.vectorize(lambda d: d.id)(mesh.devices).reshape(2, 4)
    np.testing.assert_array_equal(ids, [[0, 1, 2, 3], [4, 5, 6, 7]])


def test_auto_mesh_is_recorded_concretely():
    config = tiny_config(device_count=8)
    assert config.mesh.mode.value == "fixed" and -1 not in config.mesh.axes.values()
    assert config.mesh.axes == {"data": 8, "fsdp": 1, "tensor": 1, "expert": 1, "seq": 1}
    # Planned for the profile's 8 GPUs (no GPU needed): llama2_7b's state needs fsdp.
    planned = resolve(compose_config.load(["model=llama2_7b", "hardware=gpu_h100"]))
    assert planned.mesh.axes["data"] * planned.mesh.axes["fsdp"] == 8 and planned.mesh.axes["fsdp"] > 1


def test_two_inferred_axes_need_mode_auto():
    with pytest.raises(ConfigError, match="only one axis may be -1, got data, fsdp"):
        tiny_config("mesh=dp", "mesh.axes.fsdp=-1")


def test_impossible_mesh_exits_2_naming_both_numbers(tmp_path):
    result = run_cli(tmp_path, "mesh=dp", "mesh.axes.data=3", "sharding=dp", devices=2)
    assert result.returncode == 2, result.stderr
    assert "multiply to 3 but there are 2 devices" in result.stderr
    assert "Traceback" not in result.stderr
