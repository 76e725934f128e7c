"""Checkpoint cost on this machine: save (blocking part and total), restore, what the
checksums add to both, and what async saving costs a training step.

    .venv/bin/python scripts/checkpoint_benchmark.py save llama_tiny
    .venv/bin/python scripts/checkpoint_benchmark.py save 1b --inflight-gb 2  # ~12 GB RAM+disk: run alone
    .venv/bin/python scripts/checkpoint_benchmark.py save 1b --dtype bfloat16 --inflight-gb 2  # ~6 GB
    .venv/bin/python scripts/checkpoint_benchmark.py steps llama_tiny

`save`: create the sharded TrainState (params + AdamW moments, in --dtype) inside jit, save
it with the run's Checkpointer (async), time the blocking call and the total, free it,
restore it into the same shardings in a fresh process. The checksums are part of both paths
and run in sequence with the rest (written before the commit rename, verified before orbax
reads), so their cost is timed on its own and the time without them is the difference:
save total = orbax's write + checksums; restore = checksum verification + orbax's read.
The restore reads cold files: the checkpoint's pages are dropped from the page cache first
(posix_fadvise on its own files only), as on a requeued job's new host.
`steps`: mean step time without checkpoints, with an async save every K steps and with a
sync save every K steps (the same program and batches).
"""

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from hydralearn.config import compose as compose_config
from hydralearn.compose.resolve import resolve
from hydralearn.compose.build import build
from hydralearn.data.loader import first_batches
from hydralearn.runtime import integrity
from hydralearn.runtime.checkpoint import Checkpointer, abstract_state
from hydralearn.config.schema import CheckpointConfig, SaveMode

MODELS = {
    "llama_tiny": ["model=llama_tiny", "data=synthetic", "data.seq_len=128", "data.batch_size=8"],
    # A TinyLlama-like shape, ~0.98B parameters (embeddings untied, vocab 32000).
    "1b": ["model=llama_tiny", "model.d_model=2048", "model.num_layers=18", "model.num_heads=16",
           "model.num_kv_heads=8", "model.ffn_dim=5632", "model.vocab_size=32000", "data=synthetic",
           "data.seq_len=64", "data.batch_size=1"],
}


def load(model: str, extra: list[str]):
    config = compose_config.load([*MODELS[model], *extra])
    return resolve(config, device_count=jax.device_count())


def random_state(program):
    """The program's TrainState filled with random values, one leaf at a time.

    Creating it leaf by leaf keeps the peak at the state's own size (the jitted init of the
    1B model needs several GB of temporaries on top); random rather than the real init
    because fresh Adam moments are zeros, which compress to nothing on disk.
    """
    target = abstract_state(program.init_state, program.state_shardings)
    leaves, treedef = jax.tree.flatten(target)
    made = []
    for i, leaf in enumerate(leaves):
        create = functools.partial(_random_leaf, seed=i, shape=leaf.shape, dtype=leaf.dtype)
        made.append(jax.block_until_ready(jax.jit(create, out_shardings=leaf.sharding)()))
    return jax.tree.unflatten(treedef, made)


def _random_leaf(*, seed: int, shape, dtype):
    if jnp.issubdtype(dtype, jnp.floating):
        return 0.02 * jax.random.normal(jax.random.key(seed), shape, dtype)
    return jnp.zeros(shape, dtype)


def bench_save(model: str, directory: Path, *, inflight_gb: int, extra: list[str]) -> None:
    program = build(load(model, extra))
    started = time.perf_counter()
    state = random_state(program)
    nbytes = sum(x.nbytes for x in jax.tree.leaves(state))
    print(f"{model}: {program.num_params:,} parameters, state {nbytes / 2**30:.2f} GiB "
          f"(params + Adam moments, random values), created in {time.perf_counter() - started:.1f} s")
    config = CheckpointConfig(mode=SaveMode["async"], inflight_gb=inflight_gb)
    checkpointer = Checkpointer(directory, config)
    started = time.perf_counter()
    checkpointer.save(1, state, meta={"step": 1})
    blocking = time.perf_counter() - started
    checkpointer.wait()
    total = time.perf_counter() - started
    checkpointer.close()
    on_disk = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
    # The same work the commit callback did, again on the same files (warm: just written).
    started = time.perf_counter()
    integrity.write_manifest(directory / "1")
    checksums = time.perf_counter() - started
    print(f"save: blocking {blocking:.2f} s, total {total:.2f} s (checksums {checksums:.2f} s of it: "
          f"{total - checksums:.2f} s without, x{total / (total - checksums):.3f} with), "
          f"{on_disk / 2**30:.2f} GiB on disk")
    del state, checkpointer
    drop_from_page_cache(directory)
    # Restore in a fresh process, as a requeued job does (and with this one's memory freed).
    subprocess.run([sys.executable, __file__, "restore", model, "--dir", str(directory),
                    "--inflight-gb", str(inflight_gb), *sum((["--set", e] for e in extra), [])],
                   check=True)


def drop_from_page_cache(directory: Path) -> None:
    """Evict the checkpoint's own pages, so the restore reads from the disk."""
    for path in directory.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)


def bench_restore(model: str, directory: Path, *, inflight_gb: int, extra: list[str]) -> None:
    program = build(load(model, extra))
    checkpointer = Checkpointer(directory, CheckpointConfig(inflight_gb=inflight_gb))
    started = time.perf_counter()
    step = checkpointer.newest_intact()  # verifies every file's checksum
    verified = time.perf_counter()
    restored = checkpointer.restore(step, abstract_state(program.init_state, program.state_shardings))
    done = time.perf_counter()
    total, checksums = done - started, verified - started
    print(f"restore (fresh process, cold files): {total:.2f} s (step {restored.step}; checksums "
          f"{checksums:.2f} s of it: {total - checksums:.2f} s without, x{total / (total - checksums):.3f} with)")
    checkpointer.close()
    drop_from_page_cache(directory)
    started = time.perf_counter()
    integrity.verify(directory / str(step))
    print(f"checksum verification alone, cold files: {time.perf_counter() - started:.2f} s")


def bench_steps(model: str, directory: Path, *, steps: int, every: int) -> None:
    config = load(model, [])
    program = build(config)
    batches = first_batches(config.data, steps)
    for label, mode in (("none", None), ("async", SaveMode["async"]), ("sync", SaveMode.sync)):
        shutil.rmtree(directory, ignore_errors=True)
        checkpointer = Checkpointer(directory, CheckpointConfig(mode=mode or SaveMode.sync, keep_last=2))
        state = program.init_state()
        state, _ = program.train_step(state, batches[0].inputs, batches[0].targets)  # compile
        jax.block_until_ready(state)
        times = []
        for s in range(1, steps):
            started = time.perf_counter()
            state, metrics = program.train_step(state, batches[s].inputs, batches[s].targets)
            if mode is not None and s % every == 0:
                checkpointer.save(s, state, meta={"step": s})
            float(metrics["loss"])  # the loop fetches every step's metrics
            times.append(time.perf_counter() - started)
        checkpointer.close()
        times = np.asarray(times)
        saving = np.asarray([mode is not None and s % every == 0 for s in range(1, steps)])
        plain = np.median(times[~saving])
        extra = f", steps that saved {times[saving].mean() * 1e3:7.1f} ms (+{(times[saving].mean() - plain) * 1e3:.1f} ms per save)" if saving.any() else ""
        print(f"checkpoints {label:5s}: median step without a save {plain * 1e3:7.1f} ms{extra}; "
              f"{steps - 1} steps in {times.sum():.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["save", "restore", "steps"])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--steps", type=int, default=41)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--inflight-gb", type=int, default=96, help="checkpoint.inflight_gb")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--dtype", default=None, help="model.param_dtype (default: the model's)")
    parser.add_argument("--set", action="append", default=[], help="another config override")
    args = parser.parse_args()
    extra = args.set + ([f"model.param_dtype={args.dtype}"] if args.dtype else [])
    if args.what == "restore":  # the second half of `save`, in its own process
        return bench_restore(args.model, args.dir, inflight_gb=args.inflight_gb, extra=extra)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="hydralearn-ckpt-bench-"))
    try:
        if args.what == "save":
            bench_save(args.model, directory / "checkpoints", inflight_gb=args.inflight_gb, extra=extra)
        else:
            bench_steps(args.model, directory / "checkpoints", steps=args.steps, every=args.every)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
