"""Config files that are not configs: one line naming the file and the cause."""

import pytest

from hydralearn.config import compose as compose_config
from hydralearn.config.files import read_mapping
from hydralearn.errors import ConfigError


@pytest.mark.parametrize("content, message", [
    (b"a: [1\n", "{path}:2:1: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    (b"\xff\xfe\x00garbage", "{path}: not a text file (byte 0 is not UTF-8)"),
    (b"- 1\n- 2\n", "{path}: not a config (a YAML mapping of keys was expected, it holds a list)"),
    (b"", "{path}: not a config (a YAML mapping of keys was expected, it holds nothing)"),
])
def test_unreadable_config_files_are_one_line(tmp_path, content, message):
    path = tmp_path / "resolved_config.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as error:
        read_mapping(path)
    assert error.value.errors == [message.format(path=path)]


def test_a_missing_file_and_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="cannot read it: No such file or directory"):
        read_mapping(tmp_path / "absent.yaml")
    (tmp_path / "ok.yaml").write_text("a: 1\nb:\n  c: ${a}\n")
    assert read_mapping(tmp_path / "ok.yaml") == {"a": 1, "b": {"c": 1}}


def test_an_invalid_experiment_file_is_named_with_its_line(tmp_path):
    (tmp_path / "experiment").mkdir()
    bad = tmp_path / "experiment" / "bad.yaml"
    bad.write_text("# @package _global_\nmodel:\n  d_model: [1, 2\n")
    with pytest.raises(ConfigError) as error:
        compose_config.load([f"hydra.searchpath=[file://{tmp_path}]", "+experiment=bad"])
    assert error.value.errors == [f"{bad}:4:1: invalid YAML: expected ',' or ']', but got '<stream end>'"]
