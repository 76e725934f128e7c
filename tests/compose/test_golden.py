"""Checked-in goldens match conf/; a changed preset is caught; the refresh is deterministic."""

import shutil

import pytest

from hydralearn.config import compose as compose_config
from hydralearn.review import golden

NAMES = golden.experiment_names()


def test_enough_experiments_each_with_goldens():
    assert len(NAMES) >= 10
    on_disk = {p.name.split(".")[0] for p in golden.GOLDEN_DIR.glob("*.*")}
    assert on_disk == set(NAMES), f"goldens and experiments differ; run {golden.REFRESH_COMMAND}"


@pytest.mark.parametrize("name", NAMES)
def test_golden_is_current(name):
    drifted = golden.drift(name)
    if drifted:
        diffs = "\n".join(d.diff or f"{d.path}: missing" for d in drifted)[:4000]
        pytest.fail(f"golden files of experiment {name} are out of date; refresh them with\n"
                    f"    {golden.REFRESH_COMMAND}\nand review the diff:\n{diffs}")


def test_changed_preset_is_caught(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    shutil.copytree(compose_config.CONF_DIR, conf)
    rules = conf / "sharding" / "fsdp.yaml"
    rules.write_text(rules.read_text() + "rules:\n  embed: null\n")
    monkeypatch.setattr(compose_config, "CONF_DIR", conf)
    drifted = golden.drift("tiny_cpu8")
    assert {d.path.name for d in drifted} == {"tiny_cpu8.config.yaml", "tiny_cpu8.params.txt"}
    params_diff = next(d.diff for d in drifted if d.path.name.endswith("params.txt"))
    assert "-embed.table" in params_diff and "P(None, 'fsdp')" in params_diff
    assert "+embed.table" in params_diff and "P(None, None)" in params_diff


def test_render_is_deterministic():
    assert golden.render("tiny_nope") == golden.render("tiny_nope")
