"""One training start composes the config once, validates it once, and builds the abstract
model a fixed number of times (resolve, the memory check's plan, the program, the plain-model
shardings): counted in a real `hydralearn-train` process, so none can creep back unseen."""

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


def test_a_start_composes_and_validates_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", COUNTING, *TINY, "trainer.steps=1",
                           "trainer.eval_every=0", "trainer.eval_batches=1", "trainer.sample_tokens=0",
                           f"hydra.run.dir={tmp_path}"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("COUNTS ")]
    assert json.loads(line.removeprefix("COUNTS ")) == {
        "compositions": 1, "validations": 1, "abstract_builds": 4}
