"""Framework overhead: hydralearn's train step vs a plain-JAX Llama step of the same shape.

Both use the same optax optimizer and the same batches; steps are interleaved so machine noise
hits both alike. Prints median step times, their ratio, and tokens/s.

    .venv/bin/python scripts/bench_overhead.py [overrides...]   # e.g. model=llama_tiny
"""

import statistics
import sys
import time
from pathlib import Path

import jax
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.reference

from hydralearn.config import compose as compose_config  # noqa: E402
from hydralearn.compose.resolve import resolve  # noqa: E402
from hydralearn.compose.build import build  # noqa: E402
from hydralearn.compose.optim import build_optimizer  # noqa: E402
from hydralearn.data.loader import first_batches  # noqa: E402
from tests.reference import plain_llama  # noqa: E402

STEPS = 12


def plain_step_fn(config):
    tx = build_optimizer(config.optim, schedule=config.schedule, total_steps=config.trainer.steps).transform
    theta = config.model.rope_theta

    @jax.jit
    def step(params, opt_state, inputs, targets):
        loss, grads = jax.value_and_grad(plain_llama.loss)(params, inputs, targets, rope_theta=theta)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss
    return tx, step


def main() -> None:
    config = resolve(compose_config.load(sys.argv[1:]), device_count=1)
    program = build(config, devices=jax.devices()[:1])
    batches = first_batches(config.data, STEPS)
    state = program.init_state()
    tx, plain_step = plain_step_fn(config)
    params = jax.tree.map(jax.numpy.copy, plain_llama.from_hydralearn(state.params))  # state is donated
    opt_state = tx.init(params)
    times = {"hydralearn": [], "plain_jax": []}
    for batch in batches:
        t = time.perf_counter()
        state, metrics = program.train_step(state, batch.inputs, batch.targets)
        jax.block_until_ready(metrics["loss"])
        times["hydralearn"].append(time.perf_counter() - t)
        t = time.perf_counter()
        params, opt_state, loss = plain_step(params, opt_state, batch.inputs, batch.targets)
        jax.block_until_ready(loss)
        times["plain_jax"].append(time.perf_counter() - t)
    tokens = config.data.batch_size * config.data.seq_len
    medians = {k: statistics.median(v[2:]) for k, v in times.items()}  # drop compile steps
    for name, seconds in medians.items():
        print(f"{name:>11}: {seconds * 1e3:8.1f} ms/step  {tokens / seconds:8.0f} tokens/s")
    print(f"      ratio: {medians['hydralearn'] / medians['plain_jax']:.3f} (hydralearn / plain JAX)")
    print(f"final losses: hydralearn {float(metrics['loss']):.4f}, plain {float(loss):.4f}")


if __name__ == "__main__":
    main()
