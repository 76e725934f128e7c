"""Non-finite steps: skipped inside the jitted step (state kept bit for bit), or the run stops
with an error naming the step; the watchdog in a real process."""

import json
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import tiny_config
from hydralearn.compose.build import build
from hydralearn.data.loader import Loader
from hydralearn.data.pipeline import load_corpus, train_batch
from hydralearn.runtime.checkpoint import committed_steps
from hydralearn.runtime.trainer import NonFiniteLoss, Throughput, train
from hydralearn.exit_codes import WATCHDOG_EXIT


def _poison(state):
    """The same state with one parameter entry set to inf: the loss becomes non-finite."""
    leaves, treedef = jax.tree.flatten(state.params)
    leaves[0] = leaves[0].at[(0,) * leaves[0].ndim].set(jnp.inf)
    return type(state)(step=state.step, params=jax.tree.unflatten(treedef, leaves),
                       opt_state=state.opt_state)


@pytest.mark.slow
def test_skip_keeps_params_and_optimizer_state(one_device):
    config = tiny_config("trainer.nonfinite=skip")
    program = build(config, devices=one_device)
    batch = train_batch(config.data, load_corpus(config.data), 0)
    # Two steps so the optimizer state is not its initial zeros.
    state, _ = program.train_step(program.init_state(), batch.inputs, batch.targets)
    state, _ = program.train_step(state, batch.inputs, batch.targets)
    poisoned = _poison(state)
    before = jax.device_get((poisoned.params, poisoned.opt_state))
    after, metrics = program.train_step(poisoned, batch.inputs, batch.targets)
    assert int(metrics["nonfinite"]) == 1 and not np.isfinite(float(metrics["loss"]))
    assert int(after.step) == 3  # the data position still advances
    for a, b in zip(jax.tree.leaves(jax.device_get((after.params, after.opt_state))), jax.tree.leaves(before)):
        np.testing.assert_array_equal(a, b)
    # A finite step (the second: the first has lr 0 in warmup) does change the parameters.
    state, _ = program.train_step(program.init_state(), batch.inputs, batch.targets)
    initial = jax.tree.leaves(jax.device_get(state.params))
    updated, metrics = program.train_step(state, batch.inputs, batch.targets)
    assert int(metrics["nonfinite"]) == 0
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(jax.device_get(updated.params)), initial))


@pytest.mark.slow
def test_stop_names_the_step_and_keeps_earlier_checkpoints(one_device, tmp_path):
    config = tiny_config("optim.lr=1e30", "schedule.warmup_steps=0", "trainer.steps=20",
                         "trainer.log_every=1", "trainer.sample_tokens=0", "checkpoint.every_steps=1")
    program = build(config, devices=one_device)
    throughput = Throughput(tokens_per_step=128, flops_per_token=1.0, peak_flops=1.0)
    with pytest.raises(NonFiniteLoss, match=r"^step (\d+): the loss") as error:
        train(program, loader=Loader(config.data), trainer=config.trainer,
              checkpoint=config.checkpoint, throughput=throughput, run_dir=tmp_path)
    step = int(str(error.value).split()[1].rstrip(":"))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    bad = [r for r in records if r.get("nonfinite")]
    assert bad[0]["step"] == step
    assert bad[0]["loss"] in ("nan", "inf", "-inf") or bad[0]["grad_norm"] in ("nan", "inf")
    assert all(np.isfinite(r["loss"]) for r in records if r["step"] < step and "loss" in r)
    saved = committed_steps(tmp_path / "checkpoints")
    assert saved and max(saved) < step  # the non-finite state was never saved
    assert f"newest checkpoint is at step {max(saved)}" in str(error.value)


WATCHDOG_SCRIPT = textwrap.dedent("""
    import logging, sys, time
    from hydralearn.runtime.watchdog import Watchdog
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    def stuck_in_collective():
        time.sleep(30)

    with Watchdog(timeout_s=0.4) as dog:
        for _ in range(8):  # healthy steps: the watchdog must stay quiet
            time.sleep(0.1)
            dog.beat()
        if sys.argv[1] == "hang":
            stuck_in_collective()
    print("finished")
""")


@pytest.mark.parametrize("mode", ["hang", "healthy"])
def test_watchdog_dumps_stacks_and_exits(mode):
    result = subprocess.run([sys.executable, "-c", WATCHDOG_SCRIPT, mode], capture_output=True,
                            text=True, timeout=60)
    if mode == "healthy":
        assert result.returncode == 0 and "finished" in result.stdout, result.stderr
        return
    assert result.returncode == WATCHDOG_EXIT
    assert "watchdog: no training step completed" in result.stderr
    assert "stuck_in_collective" in result.stderr and "MainThread" in result.stderr
    assert "finished" not in result.stdout


def test_a_stop_before_any_checkpoint_says_so():
    """The stop's line names the newest checkpoint, or that there is none (not "step None")."""
    from types import SimpleNamespace

    from hydralearn.runtime.trainer import _Loop

    loop = object.__new__(_Loop)  # only what the check reads
    loop.trainer = tiny_config().trainer
    loop.log = SimpleNamespace(write=lambda step, values: None)
    for saved, said in [(None, "no checkpoint was saved yet (a rerun starts from step 0)"),
                        (4, "the newest checkpoint is at step 4")]:
        loop.checkpointer = SimpleNamespace(latest_step=lambda saved=saved: saved)
        with pytest.raises(NonFiniteLoss) as error:
            loop._check_finite(5, {"nonfinite": 1.0, "loss": float("nan"), "grad_norm": float("nan")})
        assert f"not finite; {said}. Lower" in str(error.value)
