"""The package's import contracts ([tool.importlinter] in pyproject.toml) hold, and the same
kinds of contract do catch an import that runs back or closes a cycle."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]


def lint(config: Path, cwd: Path, *, pythonpath: str | None = None) -> subprocess.CompletedProcess:
    env = None if pythonpath is None else {"PYTHONPATH": pythonpath, "PATH": "/usr/bin:/bin"}
    return subprocess.run([*LINT, "--config", str(config), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_package_keeps_its_contracts():
    result = lint(REPO / "pyproject.toml", REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_a_backward_import_a_cycle_and_a_forbidden_import_are_caught(tmp_path):
    pkg = tmp_path / "pkg"
    for name, body in {"__init__.py": "", "cli.py": "from pkg import compose\n",
                       "compose/__init__.py": "", "compose/a.py": "from pkg.compose import b\n",
                       "compose/b.py": "from pkg.compose import a\n",
                       "layers.py": "from pkg.compose import a  # runs back up\n",
                       "config.py": "def f():\n    from pkg.compose import b  # inside a function too\n"}.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(body)
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_package = "pkg"\n'
                      '[[tool.importlinter.contracts]]\nname = "layers"\ntype = "layers"\n'
                      'layers = ["pkg.cli", "pkg.compose", "pkg.layers"]\n'
                      '[[tool.importlinter.contracts]]\nname = "acyclic"\ntype = "acyclic_siblings"\n'
                      'ancestors = ["pkg"]\n'
                      '[[tool.importlinter.contracts]]\nname = "jax-free"\ntype = "forbidden"\n'
                      'source_modules = ["pkg.config"]\nforbidden_modules = ["pkg.compose"]\n')
    result = lint(config, tmp_path, pythonpath=str(tmp_path))
    assert result.returncode != 0
    assert "layers BROKEN" in result.stdout and "acyclic BROKEN" in result.stdout, result.stdout
    assert "jax-free BROKEN" in result.stdout, result.stdout
