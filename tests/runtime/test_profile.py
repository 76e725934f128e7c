"""trainer.profile.steps: a real run writes a JAX profiler trace of exactly the requested steps
(and none without it); the learning rate of every logged step is in metrics.jsonl."""

import dataclasses
import gzip
import json

import pytest

from hydralearn.config.schema import ProfileConfig
from hydralearn.data.loader import Loader
from hydralearn.runtime.trainer import Throughput, train

# The slow tier: every test here trains and traces a real run.
pytestmark = pytest.mark.slow

STEPS = 4


def run(program, run_dir, *, profile: list[int]):
    """`program` trained for STEPS steps in `run_dir`, every step logged."""
    config = program.config
    trainer = dataclasses.replace(config.trainer, steps=STEPS, log_every=1, eval_batches=1,
                                  sample_tokens=0, profile=ProfileConfig(steps=profile))
    train(program, loader=Loader(config.data), trainer=trainer,
          checkpoint=config.checkpoint, throughput=Throughput(tokens_per_step=1, flops_per_token=1.0,
                                                              peak_flops=1.0), run_dir=run_dir)
    return run_dir


@pytest.fixture(scope="module")
def profiled(tiny_program, tmp_path_factory):
    return run(tiny_program, tmp_path_factory.mktemp("profiled"), profile=[2, 3])


def test_trace_holds_exactly_the_requested_steps(profiled):
    (trace_dir,) = (profiled / "profile" / "plugins" / "profile").iterdir()
    assert list(trace_dir.glob("*.xplane.pb"))  # TensorBoard's profile plugin reads these
    with gzip.open(trace_dir / "perfetto_trace.json.gz") as f:  # what ui.perfetto.dev opens
        events = json.load(f)["traceEvents"]
    steps = sorted(int(e["args"]["step_num"]) for e in events if e.get("name") == "train")
    assert steps == [2, 3]


def test_no_trace_without_profile_steps(tiny_program, tmp_path):
    run_dir = run(tiny_program, tmp_path, profile=[])
    assert (run_dir / "metrics.jsonl").exists() and not (run_dir / "profile").exists()


def test_every_logged_step_has_its_learning_rate(profiled, tiny_program):
    """Record `step: s` is the s-th update, made with the lr of optimizer step s - 1: here in
    the default cosine schedule's linear warmup, lr * (s - 1) / warmup_steps."""
    records = [json.loads(line) for line in (profiled / "metrics.jsonl").read_text().splitlines()]
    lrs = {r["step"]: r["lr"] for r in records if "lr" in r}
    assert sorted(lrs) == list(range(1, STEPS + 1))
    config = tiny_program.config
    for step, lr in lrs.items():
        assert lr == pytest.approx(config.optim.lr * (step - 1) / config.schedule.warmup_steps, rel=1e-6)
