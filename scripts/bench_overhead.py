"""Framework overhead: hydralearn's train step vs a plain-JAX Llama step of the same shape.

Both use the same optax optimizer and the same batches; steps are interleaved so machine noise
hits both alike. Prints median step times, their ratio, and tokens/s.

    .venv/bin/python scripts/bench_overhead.py [overrides...]   # e.g. model=llama_tiny
    .venv/bin/python scripts/bench_overhead.py --tiny            # a tiny model, 3 steps (a smoke test)
"""

import argparse
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
# --tiny: a model and batch small enough to run the whole script in seconds (tests/test_scripts.py).
TINY = ["model.d_model=32", "model.num_layers=1", "model.num_heads=2", "model.num_kv_heads=1",
        "model.ffn_dim=64", "data.seq_len=32", "data.batch_size=4"]


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny model and batch, 3 steps (a smoke test)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    config = resolve(compose_config.load([*(TINY if args.tiny else []), *args.overrides]), device_count=1)
    program = build(config, devices=jax.devices()[:1])
    batches = first_batches(config.data, 3 if args.tiny else STEPS)
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
