"""JAX's persistent compilation cache (compose/cache.py, `trainer.compile_cache`): the directory
each value names, a directory it cannot use (one warning, the run goes on uncached), and in real
runs: entries written where the config says, read by a rerun, a changed step compiled afresh,
and off writing nothing."""

import logging
import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hydralearn.compose import cache
from hydralearn.config import compose as compose_config
from tests.compose.cli_run import run_cli

HIT = "Persistent compilation cache hit for '{}'"


def test_the_default_is_auto_and_cfg_job_shows_it():
    assert OmegaConf.select(compose_config.compose([]), "trainer.compile_cache") == "auto"
    assert compose_config.load(["trainer.compile_cache=null"]).trainer.compile_cache is None


def test_auto_is_jax_own_variable_else_the_per_user_cache():
    assert cache.directory("auto", {"JAX_COMPILATION_CACHE_DIR": "/shared/jax",
                                    "XDG_CACHE_HOME": "/c"}) == Path("/shared/jax")
    assert cache.directory("auto", {"XDG_CACHE_HOME": "/c"}) == Path("/c/hydralearn/jax")
    assert cache.directory("auto", {}) == Path.home() / ".cache" / "hydralearn" / "jax"


def test_a_path_is_made_absolute_and_null_or_empty_is_off(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cache.directory("jit") == tmp_path / "jit"
    assert cache.directory("~/jit") == Path.home() / "jit"
    assert cache.directory(None) is None and cache.directory("") is None
    assert cache.resolved(None) is None and cache.resolved("jit") == str(tmp_path / "jit")


def test_a_usable_directory_is_made(tmp_path):
    assert cache.usable(str(tmp_path / "a" / "b")) == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir() and not any((tmp_path / "a" / "b").iterdir())


@pytest.mark.parametrize("where, problem", [
    ("file", "is a file, not a directory"),
    ("file/below", "cannot be written: Not a directory"),
])
def test_an_unusable_directory_is_one_warning_and_no_cache(tmp_path, caplog, where, problem):
    (tmp_path / "file").write_text("")
    with caplog.at_level(logging.WARNING, logger=cache.__name__):
        assert cache.usable(str(tmp_path / where)) is None
    assert [r.getMessage() for r in caplog.records] == [
        f"trainer.compile_cache={tmp_path / where}: {tmp_path / where} {problem}; running without "
        "the compilation cache (set it to a writable directory, or null for none)"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_read_only_directory_is_not_used(tmp_path, caplog):
    (tmp_path / "ro").mkdir(mode=0o500)
    assert cache.usable(str(tmp_path / "ro")) is None
    assert "cannot be written: Permission denied" in caplog.text


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Real runs of the tiny model. JAX's own variable points elsewhere (`env_dir`): the config's
    directory must win, and off must write neither. JAX logs its cache hits (JAX_LOG_COMPILES)
    and caches every program, however fast it compiled (the tiny model's may take under 1 s)."""
    tmp = tmp_path_factory.mktemp("compile_cache")
    env = {"JAX_COMPILATION_CACHE_DIR": str(tmp / "env_dir"), "JAX_LOG_COMPILES": "1",
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    named = f"trainer.compile_cache={tmp / 'named'}"
    out = {"tmp": tmp}
    for name, overrides in {"cold": [named], "warm": [named], "remat": [named, "remat=full"],
                            "off": ["trainer.compile_cache=null"]}.items():
        result = run_cli(tmp / name, *overrides, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        out[name] = result.stdout + result.stderr
        out[f"{name}_entries"] = sorted(p.name for p in (tmp / "named").glob("*-cache"))
    return out


@pytest.mark.slow
def test_a_rerun_reads_the_entries_the_first_run_wrote(runs):
    entries = runs["cold_entries"]
    assert {"jit_init_state", "jit_train"} <= {e.partition("-")[0] for e in entries}, entries
    assert "Persistent compilation cache hit" not in runs["cold"]
    assert HIT.format("jit_train") in runs["warm"]
    assert HIT.format("jit_init_state") in runs["warm"]
    assert runs["warm_entries"] == entries
    resolved = OmegaConf.load(runs["tmp"] / "warm" / "resolved_config.yaml")
    assert resolved.trainer.compile_cache == str(runs["tmp"] / "named")


@pytest.mark.slow
def test_a_changed_step_compiles_afresh(runs):
    """Another remat policy is another train step: compiled, and cached beside the first."""
    assert HIT.format("jit_train") not in runs["remat"]
    assert HIT.format("jit_init_state") in runs["remat"]  # the state is created as before
    added = set(runs["remat_entries"]) - set(runs["warm_entries"])
    assert "jit_train" in {e.partition("-")[0] for e in added}, added


@pytest.mark.slow
def test_off_writes_no_directory_and_the_config_wins_over_jax_variable(runs):
    assert "Persistent compilation cache hit" not in runs["off"]
    assert not (runs["tmp"] / "env_dir").exists()
    resolved = OmegaConf.load(runs["tmp"] / "off" / "resolved_config.yaml")
    assert resolved.trainer.compile_cache is None
