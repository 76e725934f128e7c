"""Checkpoints in-process on the 8 simulated devices: resharding on restore, checksums and
corrupt, partial or mismatching checkpoints, retention; plus the config-change rules of a resume."""

import json
import logging
import zlib

import jax
import numpy as np
import pytest

from tests.conftest import tiny_config
from hydralearn.compose.build import build
from hydralearn.data.pipeline import load_corpus, train_batch
from hydralearn.config.resume_rule import compare
from hydralearn.config.schema import CheckpointConfig, SaveMode
from hydralearn.errors import ConfigError
from hydralearn.runtime.checkpoint import (Checkpointer, Restored, abstract_state, committed_steps,
                                           saved_config)
from hydralearn.runtime.errors import RunRefused

SYNC = CheckpointConfig(mode=SaveMode.sync)


def restore_latest(checkpointer: Checkpointer, target) -> Restored | None:
    """The newest intact checkpoint in `target`'s shardings, as the trainer finds it."""
    step = checkpointer.newest_intact()
    return None if step is None else checkpointer.restore(step, target)


def host_leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


@pytest.fixture(scope="module")
def saved_on_8(tmp_path_factory):
    """A state after one training step on 8 devices (fsdp=8), saved; its host copy."""
    config = tiny_config("mesh=fsdp", device_count=8)
    program = build(config)
    assert dict(program.mesh.shape)["fsdp"] == 8
    corpus = load_corpus(config.data)
    batch = train_batch(config.data, corpus, 0)
    put = lambda x: jax.device_put(x, program.batch_sharding)  # noqa: E731
    state, _ = program.train_step(program.init_state(), put(batch.inputs), put(batch.targets))
    expected = host_leaves(state)
    directory = tmp_path_factory.mktemp("ckpt") / "checkpoints"
    checkpointer = Checkpointer(directory, SYNC)
    checkpointer.save(1, state, meta={"step": 1})
    checkpointer.close()
    return directory, expected


@pytest.mark.slow
@pytest.mark.parametrize("mesh,devices", [
    ([], 1),
    (["mesh=fsdp_tp", "mesh.axes.fsdp=4", "mesh.axes.tensor=2"], 8),
])
def test_restore_reshards_into_another_mesh(saved_on_8, mesh, devices):
    directory, expected = saved_on_8
    program = build(tiny_config(*mesh, device_count=devices), devices=jax.devices()[:devices])
    checkpointer = Checkpointer(directory, SYNC)
    restored = restore_latest(checkpointer, abstract_state(program.init_state, program.state_shardings))
    checkpointer.close()
    assert restored.step == 1 and restored.meta == {"step": 1}
    got = host_leaves(restored.state)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    shardings = jax.tree.leaves(jax.tree.map(lambda x: x.sharding, restored.state))
    assert shardings == jax.tree.leaves(program.state_shardings)
    assert all(len(s.device_set) == devices for s in shardings)


@pytest.fixture(scope="module")
def small(one_device):
    program = build(tiny_config(), devices=one_device)
    return program, program.init_state()


def test_truncated_file_is_detected_and_set_aside_under_a_fresh_name(small, tmp_path, caplog):
    program, state = small
    checkpointer = Checkpointer(tmp_path, SYNC)
    for step in (1, 2):
        checkpointer.save(step, state, meta={"step": step})
    checkpointer.close()
    data_files = sorted((tmp_path / "2" / "state").rglob("d/*"), key=lambda p: p.stat().st_size)
    with data_files[-1].open("r+b") as f:  # the largest array data file, cut in half
        f.truncate(data_files[-1].stat().st_size // 2)
    (tmp_path / "2.corrupt-1").mkdir()  # set aside by an earlier attempt: never overwritten
    checkpointer = Checkpointer(tmp_path, SYNC)
    with caplog.at_level(logging.WARNING):
        restored = restore_latest(checkpointer, abstract_state(program.init_state, program.state_shardings))
    checkpointer.close()
    assert restored.step == 1
    (warning,) = [r.getMessage() for r in caplog.records if "is corrupt" in r.getMessage()]
    assert str(tmp_path / "2") in warning and "renamed to 2.corrupt-2" in warning
    assert data_files[-1].name in warning and "bytes" in warning
    assert committed_steps(tmp_path) == [1] and (tmp_path / "2.corrupt-2" / "state").is_dir()


def test_a_checkpoint_of_another_shape_is_refused_and_left_alone(small, one_device, tmp_path):
    _, state = small
    checkpointer = Checkpointer(tmp_path, SYNC)
    checkpointer.save(1, state, meta={"step": 1})
    checkpointer.close()
    before = _snapshot(tmp_path)
    other = build(tiny_config("model.d_model=48", "model.ffn_dim=96"), devices=one_device)
    checkpointer = Checkpointer(tmp_path, SYNC)
    with pytest.raises(ConfigError) as error:
        restore_latest(checkpointer, abstract_state(other.init_state, other.state_shardings))
    checkpointer.close()
    lines = error.value.errors
    assert "does not fit this config" in lines[0] and str(tmp_path / "1") in lines[0]
    assert "params.blocks.attn_norm.scale.value: (2, 32) float32 -> (2, 48) float32" in lines, lines
    assert lines[-2].startswith("... and ") and "name=<new name>" in lines[-1]
    assert _snapshot(tmp_path) == before  # same files, same bytes


def test_no_restorable_checkpoint_refuses_instead_of_restarting(small, tmp_path):
    program, state = small
    checkpointer = Checkpointer(tmp_path, SYNC)
    checkpointer.save(1, state, meta={"step": 1})
    checkpointer.close()
    (tmp_path / "1" / "checksums.json").unlink()  # a checkpoint that cannot be trusted
    checkpointer = Checkpointer(tmp_path, SYNC)
    with pytest.raises(RunRefused, match=r"none can be restored \(set aside: 1.corrupt-1\)"):
        restore_latest(checkpointer, abstract_state(program.init_state, program.state_shardings))
    with pytest.raises(RunRefused):  # and on every later start
        restore_latest(checkpointer, abstract_state(program.init_state, program.state_shardings))
    checkpointer.close()


def test_each_checkpoint_carries_its_config_and_checksums(small, tmp_path):
    _, state = small
    checkpointer = Checkpointer(tmp_path, SYNC, record={"model": {"d_model": 32}})
    checkpointer.save(1, state, meta={"step": 1})
    checkpointer.close()
    checkpointer = Checkpointer(tmp_path, CheckpointConfig(), record={"model": {"d_model": 33}})
    checkpointer.save(2, state, meta={"step": 2})  # async: checksums written before the commit
    checkpointer.close()
    assert saved_config(tmp_path) == {"model": {"d_model": 33}}
    manifest = json.loads((tmp_path / "2" / "checksums.json").read_text())["files"]
    on_disk = {p.relative_to(tmp_path / "2").as_posix(): p for p in (tmp_path / "2").rglob("*")
               if p.is_file() and p.parent != tmp_path / "2"}
    assert manifest.keys() == on_disk.keys() and any(k.startswith("config/") for k in manifest)
    for name, path in on_disk.items():  # zlib called directly, not through the code under test
        assert manifest[name] == {"size": path.stat().st_size,
                                  "crc32": f"{zlib.crc32(path.read_bytes()):08x}"}
    config_file = next(p for n, p in on_disk.items() if n.startswith("config/"))
    config_file.write_text(config_file.read_text().replace("33", "34"))
    assert saved_config(tmp_path) == {"model": {"d_model": 32}}  # the damaged record is skipped


def _snapshot(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_partial_checkpoint_is_named_and_ignored(small, tmp_path, caplog):
    program, state = small
    checkpointer = Checkpointer(tmp_path, SYNC)
    checkpointer.save(1, state, meta={"step": 1})
    checkpointer.close()
    partial = tmp_path / "2.orbax-checkpoint-tmp-1234"  # what kill -9 mid-write leaves
    (partial / "state").mkdir(parents=True)
    with caplog.at_level(logging.WARNING):
        checkpointer = Checkpointer(tmp_path, SYNC)
        restored = restore_latest(checkpointer, abstract_state(program.init_state, program.state_shardings))
        checkpointer.close()
    assert restored.step == 1
    assert any(str(partial) in r.getMessage() and "incomplete" in r.getMessage() for r in caplog.records)


def test_retention_keeps_last_n_every_n_and_best(small, tmp_path):
    _, state = small
    config = CheckpointConfig(mode=SaveMode.sync, keep_last=2, keep_every_steps=4, keep_best=1)
    checkpointer = Checkpointer(tmp_path, config)
    eval_losses = {1: 3.0, 2: 1.0, 3: 2.5, 4: 2.0, 5: 2.2, 6: 2.1, 7: 2.4, 8: 2.3, 9: 2.6}
    for step, loss in eval_losses.items():
        checkpointer.save(step, state, meta={"step": step}, metrics={"eval_loss": loss})
    checkpointer.close()
    # newest 2 (8, 9) + multiples of 4 (4, 8) + lowest eval loss (2)
    assert committed_steps(tmp_path) == [2, 4, 8, 9]


def test_save_is_skipped_for_an_existing_step(small, tmp_path):
    _, state = small
    checkpointer = Checkpointer(tmp_path, SYNC)
    assert checkpointer.save(3, state, meta={})
    assert not checkpointer.save(3, state, meta={})
    checkpointer.close()


def test_config_changes_split_into_allowed_and_refused():
    saved = {"model": {"d_model": 32, "ffn": {"_target_": "a.Swiglu"}}, "remat": {"policy": "none"},
             "mesh": {"axes": {"fsdp": 8, "tensor": 1}}, "hardware": {"xla_flags": {}},
             "trainer": {"steps": 10, "eval_every": 5}, "optim": {"lr": 0.1}}
    current = {"model": {"d_model": 48, "ffn": {"_target_": "a.Gelu"}}, "remat": {"policy": "full"},
               "mesh": {"axes": {"fsdp": 1, "tensor": 1}}, "hardware": {"xla_flags": {"x": 1}},
               "trainer": {"steps": 10, "eval_every": 2}, "optim": {"lr": 0.1}, "new": 1}
    changes = compare(saved=saved, current=current)
    assert changes.refused == ["model.d_model: 32 -> 48", "model.ffn._target_: 'a.Swiglu' -> 'a.Gelu'",
                               "new: '<absent>' -> 1"]
    assert changes.allowed == ["hardware.xla_flags: {} -> '<absent>'",
                               "hardware.xla_flags.x: '<absent>' -> 1",
                               "mesh.axes.fsdp: 8 -> 1", "remat.policy: 'none' -> 'full'",
                               "trainer.eval_every: 5 -> 2"]
    assert compare(saved=saved, current=saved) == type(changes)(allowed=[], refused=[])


def test_data_position_round_trips_and_another_process_count_is_refused(small, tmp_path):
    program, state = small
    position = {"loader": [3, {"epoch": 1}], "note": "any JSON"}
    checkpointer = Checkpointer(tmp_path, SYNC)
    checkpointer.save(1, state, meta={"step": 1}, data_state=position)
    checkpointer.close()
    written = tmp_path / "1" / "data" / "process_0-of-1.json"
    assert json.loads(written.read_text()) == position  # Grain's handler: one file per process
    target = abstract_state(program.init_state, program.state_shardings)
    checkpointer = Checkpointer(tmp_path, SYNC)
    assert checkpointer.restore(1, target).data_state == position
    written.rename(written.with_name("process_0-of-4.json"))  # as if written by 4 processes
    with pytest.raises(RunRefused, match=r"written by 4 JAX processes and this run has 1: .*"
                                         r"resume with 4 processes"):
        checkpointer.restore(1, target)
    checkpointer.close()
