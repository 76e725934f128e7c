"""Gradient accumulation's cost: step time and memory of `trainer.grad_accum=K` against K=1 at
the same global batch (default: llama_tiny on stdlib, 16 x 256 tokens per step).

Both steps are compiled ahead of time (XLA's memory analysis of each: arguments, outputs,
temporaries, donated bytes, peak) and then run on the same batches, interleaved K=1, K, K=1,
K, ... so machine noise hits both alike. Prints median step times, their ratio and the memory.

    .venv/bin/python scripts/bench_grad_accum.py [--accum 4] [--steps 12] [--tiny] [overrides...]
"""

import argparse
import statistics
import time

import jax

from hydralearn.config import compose as compose_config
from hydralearn.compose.build import build
from hydralearn.compose.resolve import resolve
from hydralearn.data.loader import HostBatch, first_batches

MIB = 2**20
# --tiny: a model and batch small enough to run the whole script in seconds (tests/test_scripts.py).
TINY = ["model.d_model=32", "model.num_layers=1", "model.num_heads=2", "model.num_kv_heads=1",
        "model.ffn_dim=64", "data.seq_len=32", "data.batch_size=4"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accum", type=int, default=4)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant")
    parser.add_argument("--tiny", action="store_true", help="a tiny model and batch, 2 steps (a smoke test)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.tiny:
        args.steps, args.overrides = 2, [*TINY, *args.overrides]
    variants = (1, args.accum)
    programs = {k: build(resolve(compose_config.load([*args.overrides, f"trainer.grad_accum={k}"]),
                                 device_count=1), devices=jax.devices()[:1]) for k in variants}
    config = programs[1].config
    batches = [step_args(b) for b in first_batches(config.data, args.steps + 1)]
    states = {k: p.init_state() for k, p in programs.items()}
    steps = {k: p.train_step.lower(states[k], *batches[0]).compile() for k, p in programs.items()}
    times = {k: [] for k in variants}
    for batch in batches:  # the first round warms up and is dropped
        for k in variants:
            start = time.perf_counter()
            states[k], metrics = steps[k](states[k], *batch)
            jax.block_until_ready(metrics["loss"])
            times[k].append(time.perf_counter() - start)
    median = {k: statistics.median(t[1:]) for k, t in times.items()}
    print(f"{config.name}: {config.data.batch_size} x {config.data.seq_len} tokens per step, "
          f"{jax.devices()[0].platform}, {args.steps} interleaved steps each")
    print(f"{'grad_accum':>10} {'ms/step':>9} {'args MiB':>9} {'temp MiB':>9} {'peak MiB':>9}")
    for k in variants:
        mem = steps[k].memory_analysis()
        peak = (mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
                - mem.alias_size_in_bytes)
        print(f"{k:>10} {median[k] * 1e3:9.1f} {mem.argument_size_in_bytes / MIB:9.1f} "
              f"{mem.temp_size_in_bytes / MIB:9.1f} {peak / MIB:9.1f}")
    print(f"step time ratio grad_accum={args.accum} / 1: {median[args.accum] / median[1]:.3f}")


def step_args(batch: HostBatch) -> tuple:
    """(inputs, targets, segments): the compiled step takes every positional argument, so
    a batch without segments (packing=concat) passes None, as Program.train_step does."""
    segments = None if batch.segment_ids is None else {"positions": batch.positions,
                                                       "segment_ids": batch.segment_ids}
    return batch.inputs, batch.targets, segments


if __name__ == "__main__":
    main()
