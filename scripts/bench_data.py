"""Loader overhead and data throughput (docs/data.md), all measured in one process:

1. hydralearn-tokenize's rate (tokens/s, every core) on a JSONL corpus made of this machine's
   standard-library sources, with a BPE (vocab 256) trained here by `tokenizers`;
2. the `tokens` source's host-side read rate (batches made without training);
3. the training step on the default model (llama_tiny, seq 256, batch 16) fed by data=synthetic,
   data=stdlib (the quickstart's: byte windows), data=tokens and data=jsonl + the BPE on the
   fly, in interleaved blocks of steps, each step as the trainer runs it (next batch, put,
   jitted step, fetch the previous step's metrics).

    .venv/bin/python scripts/bench_data.py [--rounds 6] [--block 10] [--mb 8] [--tiny]
"""

import argparse
import json
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import jax

from hydralearn.config import compose as compose_config
from hydralearn.compose.build import build
from hydralearn.compose.resolve import resolve
from hydralearn.data.loader import open_loader

BIN = Path(sys.executable).parent
# --tiny: a model and batch small enough to run the whole script in seconds (tests/test_scripts.py).
TINY = ["model.d_model=32", "model.num_layers=1", "model.num_heads=2", "model.num_kv_heads=1",
        "model.ffn_dim=64", "data.seq_len=32", "data.batch_size=4"]


def make_corpus(directory: Path, megabytes: float) -> Path:
    """The stdlib's .py files as JSON lines (one document per file), up to `megabytes`."""
    root, total, lines = Path(sysconfig.get_paths()["stdlib"]), 0, []
    for path in sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts):
        text = path.read_text(encoding="utf-8", errors="replace")
        if text and total < megabytes * 2**20:
            lines.append(json.dumps({"text": text}))
            total += len(text)
    (directory / "corpus").mkdir()
    out = directory / "corpus" / "stdlib.jsonl"
    out.write_text("\n".join(lines) + "\n")
    return out


def train_bpe(corpus: Path, out: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator((json.loads(line)["text"] for line in open(corpus)),
                                  trainers.BpeTrainer(vocab_size=256, special_tokens=["<unk>", "</s>"]))
    tokenizer.save(str(out))
    return out


def tokenize(corpus: Path, tokenizer: Path, out: Path) -> str:
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "hydralearn-tokenize"), "data=jsonl", f"data.paths=['{corpus}']",
                           "data/tokenizer=hf", f"data.tokenizer.path={tokenizer}", "--out", str(out)],
                          capture_output=True, text=True, check=True)
    line = done.stdout.strip().splitlines()[-1]
    return f"{line} (process wall time {time.perf_counter() - started:.1f}s, imports included)"


def read_rate(config, batches: int = 3000) -> float:
    loader = open_loader(config)
    next(loader)
    started = time.perf_counter()
    for _ in range(batches):
        next(loader)
    seconds = time.perf_counter() - started
    loader.close()
    return batches * config.batch_size * (config.seq_len + 1) / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--block", type=int, default=10, help="steps per timed block")
    parser.add_argument("--mb", type=float, default=8, help="megabytes of corpus text")
    parser.add_argument("--tiny", action="store_true", help="a tiny corpus, model and batch, one round (a smoke test)")
    args = parser.parse_args()
    tiny = TINY if args.tiny else []
    if args.tiny:
        args.rounds, args.block, args.mb = 1, 1, 0.2
    work = Path(tempfile.mkdtemp(prefix="bench_data_"))
    corpus = make_corpus(work, args.mb)
    tokenizer = train_bpe(corpus, work / "tokenizer.json")
    print("tokenize:", tokenize(corpus, tokenizer, work / "shards"))
    hf = ["data/tokenizer=hf", f"data.tokenizer.path={tokenizer}"]
    variants = {"synthetic": ["data=synthetic", "data.seq_len=256", "data.batch_size=16"],
                "stdlib": ["data=stdlib"],
                "tokens": ["data=tokens", f"data.paths=['{work}/shards/*.bin']", *hf],
                "jsonl+hf": ["data=jsonl", f"data.paths=['{corpus}']", *hf]}
    configs = {k: resolve(compose_config.load([*v, *tiny]), device_count=1) for k, v in variants.items()}
    rate = read_rate(configs['tokens'].data, batches=20 if args.tiny else 3000)
    print(f"tokens source read rate: {rate:,.0f} tokens/s (host only)")
    program = build(configs["synthetic"], devices=jax.devices()[:1])
    loaders = {k: open_loader(c.data) for k, c in configs.items()}
    states = {k: program.init_state() for k in variants}
    put = lambda x: jax.device_put(x, program.batch_sharding)  # noqa: E731
    blocks: dict[str, list[float]] = {k: [] for k in variants}

    def run_block(name: str, steps: int) -> float:
        pending = None
        started = time.perf_counter()
        for _ in range(steps):
            batch = next(loaders[name])
            states[name], metrics = program.train_step(states[name], put(batch.inputs), put(batch.targets))
            if pending is not None:
                float(pending["loss"])  # the trainer fetches a step's metrics while the next runs
            pending = metrics
        float(pending["loss"])
        return (time.perf_counter() - started) / steps

    for name in variants:
        run_block(name, 3)  # compile, warm the prefetch
    for _ in range(args.rounds):
        for name in variants:
            blocks[name].append(run_block(name, args.block))
    base = statistics.median(blocks["synthetic"])
    for name, times in blocks.items():
        median = statistics.median(times)
        print(f"{name:10s} median {median * 1e3:7.1f} ms/step  (blocks: "
              f"{', '.join(f'{t * 1e3:.0f}' for t in times)})  ratio to synthetic {median / base:.3f}")
    for loader in loaders.values():
        loader.close()


if __name__ == "__main__":
    main()
