"""Checksums of a step directory's item files: every kind of damage is named."""

import json
import os
import zlib

import pytest

from hydralearn.runtime import integrity


@pytest.fixture
def step(tmp_path):
    """A step directory laid out like orbax's: item directories and top-level records."""
    (tmp_path / "state" / "d").mkdir(parents=True)
    (tmp_path / "state" / "d" / "abc").write_bytes(os.urandom(100_000))
    (tmp_path / "state" / "_METADATA").write_text("{}")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "metadata").write_text('{"model": {"d_model": 32}}')
    (tmp_path / "_CHECKPOINT_METADATA").write_text("{}")  # rewritten by orbax at commit
    integrity.write_manifest(tmp_path)
    return tmp_path


def test_manifest_lists_every_item_file_with_zlib_crc32(step):
    files = json.loads((step / integrity.MANIFEST).read_text())["files"]
    assert sorted(files) == ["config/metadata", "state/_METADATA", "state/d/abc"]
    data = (step / "state" / "d" / "abc").read_bytes()
    assert files["state/d/abc"] == {"size": len(data), "crc32": f"{zlib.crc32(data):08x}"}
    (step / "_CHECKPOINT_METADATA").write_text('{"commit_timestamp": 1}')  # not covered
    assert integrity.verify(step) is None


def test_one_flipped_bit_is_found(step):
    path = step / "state" / "d" / "abc"
    data = bytearray(path.read_bytes())
    data[54_321] ^= 0x01
    path.write_bytes(bytes(data))
    assert integrity.verify(step) == "state/d/abc does not match its checksum"
    assert integrity.verify(step, items=("config",)) is None  # only the config record is read


@pytest.mark.parametrize("damage, problem", [
    (lambda s: (s / "state" / "d" / "abc").write_bytes(b"short"), "state/d/abc has 5 bytes, 100000 were written"),
    (lambda s: (s / "config" / "metadata").unlink(), "config/metadata is missing"),
    (lambda s: (s / integrity.MANIFEST).unlink(), "it has no checksums.json"),
    (lambda s: (s / integrity.MANIFEST).write_text("{"), "its checksums.json is unreadable"),
])
def test_missing_or_resized_files_and_manifests_are_named(step, damage, problem):
    damage(step)
    assert integrity.verify(step).startswith(problem)
