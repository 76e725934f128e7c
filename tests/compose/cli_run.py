"""Run the real `hydralearn-train` in a subprocess (a fresh backend, as a user would)."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import TINY

REPO = Path(__file__).resolve().parents[2]


def run_cli(run_dir: Path, *overrides: str, devices: int | None = None, steps: int = 2,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Tiny model, `steps` steps, run dir `run_dir`; `devices` simulated CPU devices (None:
    the XLA_FLAGS of this process are dropped, so the subprocess starts with one device);
    `env`: more environment variables."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | (env or {})
    env["JAX_PLATFORMS"] = "cpu"
    if devices:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    command = [sys.executable, "-c", "from hydralearn.cli.train import main; main()",
               *TINY, f"trainer.steps={steps}", "trainer.eval_every=0", "trainer.eval_batches=1",
               "trainer.sample_tokens=0", f"hydra.run.dir={run_dir}", *overrides]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
