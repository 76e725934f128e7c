"""One training start composes the config once, validates it once, and builds the abstract
model twice (resolve, whose parameters the memory check's plan and the plain-model shardings
reuse; the program, whose graph the end-of-run sample reuses); a sweep point is validated once
(where it was checked) and built twice. Counted in real `hydralearn-train` processes, so none
can creep back unseen."""

import json
import os
import subprocess
import sys

from tests.compose.cli_run import REPO
from tests.conftest import TINY

COUNTING = """
import collections, functools, json, sys, atexit
counts = collections.Counter()
def counting(module, name, label):
    real = getattr(module, name)
    @functools.wraps(real)
    def wrapper(*args, **kwargs):
        counts[label] += 1
        return real(*args, **kwargs)
    setattr(module, name, wrapper)
from flax import nnx
from hydralearn.config import compose, validate
counting(nnx, "eval_shape", "abstract_builds")
counting(compose, "hydra_compose", "compositions")
counting(validate, "validate", "validations")
atexit.register(lambda: print("COUNTS " + json.dumps(counts), file=sys.stderr))
from hydralearn.cli.train import main
main()
"""


def _counts(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", COUNTING, *args, *TINY, "trainer.steps=1",
                           "trainer.eval_every=0", "trainer.eval_batches=1"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("COUNTS ")]
    return json.loads(line.removeprefix("COUNTS "))


def test_a_start_composes_and_validates_once(tmp_path):
    assert _counts(tmp_path, "trainer.sample_tokens=4", f"hydra.run.dir={tmp_path}") == {
        "compositions": 1, "validations": 1, "abstract_builds": 2}


def test_a_sweep_point_is_validated_once(tmp_path):
    """Two points: one composition they share (the sweep's settings), one per point to check it
    before launch (Hydra's launcher composes each again where it runs: not counted here)."""
    assert _counts(tmp_path, "-m", "seed=1,2", "trainer.sample_tokens=0",
                   f"hydra.sweep.dir={tmp_path}") == {
        "compositions": 3, "validations": 2, "abstract_builds": 4}
    assert sorted(p.name for p in tmp_path.glob("seed=*")) == ["seed=1", "seed=2"]
