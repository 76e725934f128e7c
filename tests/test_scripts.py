"""Every script under scripts/ runs. The default tier loads each Python script as its own
__main__ and asks for --help (imports and argument parsing, in this process); the slow tier runs
each one for real, as a process, at its tiny size (--tiny or the smallest arguments it takes).

The shell scripts are covered elsewhere: bootstrap.sh and test.sh are what CI runs,
quickstart.sh is the README's first command (tests/runtime), device_check.sh has
tests/test_device_check.py."""

import concurrent.futures
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
COVERED_ELSEWHERE = {"bootstrap.sh", "test.sh", "quickstart.sh", "device_check.sh"}
VENV = Path(sys.executable).parent.parent

# Each script's smallest real run (arguments after the script's path).
TINY_RUNS = {
    "bench_data.py": ["--tiny"],
    "bench_device.py": ["--detect"],  # its measurements on CPU: tests/test_device_check.py
    "bench_finetune.py": ["--tiny"],
    "bench_generate.py": ["--tiny"],
    "bench_grad_accum.py": ["--tiny", "--accum", "2"],
    "bench_grad_accum.py data=synthetic": ["--tiny", "--accum", "2", "data=synthetic"],
    "bench_moe.py": ["--tiny"],
    "bench_overhead.py": ["--tiny"],
    "bench_sft.py": ["--tiny"],
    "bench_startup.py": ["--before", str(VENV), "--after", str(VENV), "--runs", "1", "--top", "1"],
    "checkpoint_benchmark.py": ["save", "llama_tiny", "--inflight-gb", "1"],
    "checkpoint_benchmark.py steps": ["steps", "llama_tiny", "--steps", "4", "--every", "2"],
    "loc_complexity.py": [],
    "param_bytes.py": ["--devices", "2", "model=llama_tiny"],
    "refresh_goldens.py": ["--out", "{tmp}/golden"],
    # Compiling for a GPU or TPU target takes minutes: a name it refuses runs its whole loop.
    "refresh_ledger.py": ["no_such_experiment"],
}
EXPECTED_EXIT = {"refresh_ledger.py": 1}


def test_every_script_is_run_here():
    python = {p.name for p in SCRIPTS.glob("*.py")}
    assert python == {name.split()[0] for name in TINY_RUNS}
    assert {p.name for p in SCRIPTS.glob("*.sh")} == COVERED_ELSEWHERE


@pytest.mark.parametrize("name", sorted(p.name for p in SCRIPTS.glob("*.py")))
def test_every_script_imports_and_parses_its_arguments(name, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(SCRIPTS / name), "--help"])
    monkeypatch.setattr(sys, "path", list(sys.path))  # some put the repository first
    with pytest.raises(SystemExit) as exit:
        runpy.run_path(str(SCRIPTS / name), run_name="__main__")
    assert exit.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.slow  # ~20 processes that compile small programs: minutes on 2 cores
def test_every_script_runs_at_a_tiny_size(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")

    def run(name: str) -> tuple[str, subprocess.CompletedProcess]:
        argv = [a.replace("{tmp}", str(tmp_path)) for a in TINY_RUNS[name]]
        cwd = tmp_path / name.replace(" ", "_")
        cwd.mkdir()
        return name, subprocess.run([sys.executable, str(SCRIPTS / name.split()[0]), *argv], cwd=cwd,
                                    env=env, capture_output=True, text=True, timeout=600)

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(run, TINY_RUNS))
    failed = [f"{name}: exit {r.returncode}\n{r.stderr[-2000:]}" for name, r in results.items()
              if r.returncode != EXPECTED_EXIT.get(name.split()[0], 0) or not r.stdout.strip()]
    assert not failed, "\n\n".join(failed)
    # The goldens it wrote elsewhere are the committed ones, byte for byte.
    written = list((tmp_path / "golden").iterdir())
    assert written and all(p.read_bytes() == (REPO / "tests" / "golden" / p.name).read_bytes() for p in written)


def test_bootstrap_refuses_an_untested_python_in_one_line(tmp_path):
    """constraints.txt holds what CI tested on 3.11: another interpreter is named and refused
    before anything is made."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "bootstrap.sh").write_bytes((SCRIPTS / "bootstrap.sh").read_bytes())
    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/sh\necho 3.12\n")  # answers the version question as Python 3.12 would
    fake.chmod(0o755)
    done = subprocess.run(["bash", "scripts/bootstrap.sh", "test"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHON=str(fake)))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"bootstrap: error: Python 3.11 is required (`{fake}` is 3.12); install it (e.g. `pyenv install "
        "3.11`, `uv python install 3.11` or your distribution's python3.11) and run "
        "PYTHON=python3.11 bash scripts/bootstrap.sh test"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["python3.12", "scripts"]  # no .venv
