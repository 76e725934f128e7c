"""The loss mask's cost: step time of objective=sft against objective=lm on the same model,
shape and batches (packed segments, with positions and segment ids, for both).

The SFT batches come from a synthetic chat file through data=chat; the LM step trains on the
same arrays with every target kept (context targets given back their real token ids). Both
steps are compiled ahead of time, then run interleaved lm, sft, lm, sft, ... so machine noise
hits both alike. Prints the median step times and their ratio.

    .venv/bin/python scripts/bench_sft.py [--steps 20] [--tiny] [overrides...]
"""

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from hydralearn.compose.build import build
from hydralearn.compose.resolve import resolve
from hydralearn.config import compose as compose_config
from hydralearn.data.loader import first_batches

TINY = ["data.seq_len=256", "data.batch_size=2", "model.d_model=32", "model.num_layers=2",
        "model.num_heads=4", "model.num_kv_heads=2", "model.ffn_dim=64"]
SHAPE = ["data.template=chatml", "data.seq_len=512", "data.batch_size=8", "model.d_model=256",
         "model.num_layers=4", "model.num_heads=8", "model.num_kv_heads=4", "model.ffn_dim=1024"]


def _chats(path: Path) -> None:
    rng = random.Random(0)
    with open(path, "w") as f:
        for _ in range(2000):
            turns = []
            for _ in range(rng.randint(1, 3)):
                turns += [{"role": "user", "content": "q" * rng.randint(5, 80)},
                          {"role": "assistant", "content": "a" * rng.randint(5, 80)}]
            f.write(json.dumps({"messages": turns}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--tiny", action="store_true", help="a tiny model, 2 steps: does it run")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.tiny:
        args.steps, args.overrides = 2, [*TINY, *args.overrides]
    with tempfile.TemporaryDirectory() as tmp:
        _chats(Path(tmp) / "chats.jsonl")
        common = [*SHAPE, f"data.paths=[{tmp}/chats.jsonl]", *args.overrides]
        sft = build(resolve(compose_config.load(["objective=sft", "data=chat", *common]), device_count=1),
                    devices=jax.devices()[:1])
        batches = first_batches(sft.config.data, args.steps + 1)
    lm_config = compose_config.load(["data=synthetic", *[o for o in common if not o.startswith("data.")],
                                     f"data.seq_len={sft.config.data.seq_len}",
                                     f"data.batch_size={sft.config.data.batch_size}"])
    lm = build(resolve(lm_config, device_count=1), devices=jax.devices()[:1])
    feeds = {"sft": [(b.inputs, b.targets) for b in batches],
             # the LM step on the same rows: every target real (padding keeps id 0, as LM packing has it)
             "lm": [(b.inputs, np.where(b.targets >= 0, b.targets, np.roll(b.inputs, -1, axis=1)))
                    for b in batches]}
    segments = [{"positions": b.positions, "segment_ids": b.segment_ids} for b in batches]
    programs = {"lm": lm, "sft": sft}
    states = {k: p.init_state() for k, p in programs.items()}
    steps = {k: p.train_step.lower(states[k], *feeds[k][0], segments[0]).compile() for k, p in programs.items()}
    times = {k: [] for k in programs}
    for i in range(args.steps + 1):
        for k in programs:
            started = time.perf_counter()
            states[k], metrics = steps[k](states[k], *feeds[k][i], segments[i])
            jax.block_until_ready(metrics["loss"])
            if i:  # the first run of each warms up
                times[k].append(time.perf_counter() - started)
    median = {k: statistics.median(v) for k, v in times.items()}
    share = float(np.mean([(b.targets >= 0).mean() for b in batches]))
    print(f"device {jax.devices()[0].device_kind}; {sft.config.data.batch_size} x {sft.config.data.seq_len} "
          f"tokens per step, {share:.0%} of them targets under sft")
    for k in programs:
        print(f"{k:>4}: median step {median[k] * 1e3:.2f} ms over {args.steps} steps")
    print(f"sft / lm: {median['sft'] / median['lm']:.4f}")


if __name__ == "__main__":
    main()
