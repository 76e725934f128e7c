"""Step time of a dense model vs the same model with `model/ffn=moe` (8 experts, top-2).

Both programs are built from the same overrides (plus the MoE override for the second) and
trained on the same batches; steps are interleaved so machine noise hits both alike. Prints
median step times (compile steps dropped), their ratio, and parameter counts.

    .venv/bin/python scripts/bench_moe.py [overrides...]      # default: model=llama_tiny
    .venv/bin/python scripts/bench_moe.py model=llama_tiny model.ffn.dispatch=dropless
    .venv/bin/python scripts/bench_moe.py --tiny                # a tiny model, 3 steps (a smoke test)
"""

import argparse
import statistics
import time

import jax

from hydralearn.config import compose as compose_config
from hydralearn.compose.resolve import resolve
from hydralearn.compose.build import build
from hydralearn.data.loader import first_batches

STEPS = 10
SHAPE = ["data=synthetic", "data.seq_len=256", "data.batch_size=16"]  # the stdlib default shape
# --tiny: a model and batch small enough to run the whole script in seconds (tests/test_scripts.py).
TINY = ["model.d_model=32", "model.num_layers=1", "model.num_heads=2", "model.num_kv_heads=1",
        "model.ffn_dim=64", "data.seq_len=32", "data.batch_size=4"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny model and batch, 3 steps (a smoke test)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    steps = 3 if args.tiny else STEPS
    user = [*(TINY if args.tiny else []), *args.overrides] or ["model=llama_tiny"]
    dense_overrides = [*SHAPE, *(o for o in user if not o.startswith("model.ffn."))]
    variants = {"dense": dense_overrides, "moe": [*SHAPE, "model/ffn=moe", *user]}
    programs, states = {}, {}
    for name, overrides in variants.items():
        config = resolve(compose_config.load(overrides), device_count=1)
        programs[name] = build(config, devices=jax.devices()[:1])
        states[name] = programs[name].init_state()
    config = programs["dense"].config
    batches = first_batches(config.data, steps)
    times = {name: [] for name in programs}
    for batch in batches:
        for name, program in programs.items():
            t = time.perf_counter()
            states[name], metrics = program.train_step(states[name], batch.inputs, batch.targets)
            jax.block_until_ready(metrics["loss"])
            times[name].append(time.perf_counter() - t)
    medians = {k: statistics.median(v[2:]) for k, v in times.items()}  # drop compile steps
    for name, program in programs.items():
        print(f"{name:6s} {medians[name] * 1e3:8.1f} ms/step  {program.num_params:>12,} params "
              f"({program.matmul_params:,} active in matmuls)")
    moe = programs["moe"].config.model.ffn
    print(f"moe/dense step time ratio: {medians['moe'] / medians['dense']:.2f} "
          f"({moe.num_experts} experts, top-{moe.top_k}, {moe.dispatch.value} dispatch, "
          f"{config.data.batch_size}x{config.data.seq_len} tokens/step, {jax.devices()[0].platform})")


if __name__ == "__main__":
    main()
