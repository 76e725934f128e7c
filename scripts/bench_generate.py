"""Generation speed: hydralearn (KV cache, jitted steps) against transformers' `generate` (torch
CPU, its default KV cache) on the same float32 weights, side by side and interleaved.

For each model and batch size: time to first token (a generate call for one new token: the
prefill and the first sampled token), the full generate call, and from them time per output
token (TPOT) and tokens/s. Greedy, random prompts of PROMPT tokens, NEW new tokens, no early
stop. Also decode tokens/s against the physical limits measured here: the memory-bandwidth
bound (the bytes one decode step must read: every weight a token's matmuls touch, plus the KV
cache filled so far, against the host's read bandwidth) and the compute bound (the step's
matmul FLOPs against XLA's float32 matmul rate on this host).

    .venv/bin/python scripts/bench_generate.py [--reps 5] [--models llama_tiny,llama_100m] [--batches 1,8]
    .venv/bin/python scripts/bench_generate.py --tiny   # a tiny model, prompt and buffers (a smoke test)
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from hydralearn.runtime.generate import Generator
from hydralearn.runtime.sampling import Sampling
from hydralearn.cli.target import load

PROMPT, NEW = 128, 128
MODELS = {  # transformers LlamaConfig keys; llama_tiny is conf/model/llama_tiny.yaml's shape
    "llama_tiny": dict(vocab_size=256, hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                       num_attention_heads=8, num_key_value_heads=4),
    "llama_100m": dict(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=8,
                       num_attention_heads=12, num_key_value_heads=4),
}
TINY_MODEL = dict(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=1)


def memory_bandwidth(elements: int = 2**28) -> float:
    """Host read bandwidth in bytes/s: the best of a jitted XLA sum and a torch sum over 1 GiB."""
    x = jnp.ones((elements,), jnp.float32)
    total = jax.jit(jnp.sum)
    total(x).block_until_ready()
    y = torch.ones(elements)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        total(x).block_until_ready()
        middle = time.perf_counter()
        y.sum().item()
        best = min(best, middle - start, time.perf_counter() - middle)
    return x.nbytes / best


def matmul_flops(n: int = 2048) -> float:
    """XLA's float32 matmul rate (FLOP/s) on n x n operands (2048), best of 5."""
    a = jnp.ones((n, n), jnp.float32)
    product = jax.jit(jnp.matmul)
    product(a, a).block_until_ready()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        product(a, a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


class Systems:
    """The same weights in both systems: made by transformers, imported by hydralearn."""

    def __init__(self, shape: dict, directory: Path):
        torch.manual_seed(0)
        self.config = LlamaConfig(**shape, rms_norm_eps=1e-5, tie_word_embeddings=False)
        self.torch_model = LlamaForCausalLM(self.config).eval()
        self.torch_model.generation_config.eos_token_id = None  # always NEW tokens
        self.torch_model.save_pretrained(directory)
        loaded = load(str(directory))
        self.generator = Generator(loaded.config, loaded.params, mesh=loaded.mesh)
        self.num_params = sum(p.numel() for p in self.torch_model.parameters())

    def hydralearn(self, prompts: np.ndarray, new: int) -> list:
        return self.generator.generate(prompts.tolist(), max_new_tokens=new, sampling=Sampling())

    def transformers(self, prompts: np.ndarray, new: int) -> list:
        with torch.no_grad():
            out = self.torch_model.generate(torch.from_numpy(prompts), do_sample=False,
                                            max_new_tokens=new, min_new_tokens=new, pad_token_id=0)
        return out[:, prompts.shape[1]:].tolist()

    def decode_flops(self, batch: int, filled: int) -> float:
        """Matmul FLOPs of one decode step: 2 per weight a token uses, plus attention's
        scores and weighted sum over `filled` positions."""
        c = self.config
        weights = self.num_params - c.vocab_size * c.hidden_size
        return 2.0 * batch * (weights + 2 * c.num_hidden_layers * filled * c.hidden_size)

    def decode_bytes(self, batch: int, filled: int) -> int:
        """Bytes one decode step reads: every weight but the embedding table (batch rows of it
        are gathered), plus keys and values of `filled` positions in every layer."""
        c = self.config
        weights = (self.num_params - c.vocab_size * c.hidden_size + batch * c.hidden_size) * 4
        head_dim = c.hidden_size // c.num_attention_heads
        cache = 2 * c.num_hidden_layers * batch * filled * c.num_key_value_heads * head_dim * 4
        return weights + cache


def timed(fn, *args) -> tuple[float, list]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def measure(systems: Systems, batch: int, reps: int) -> dict:
    rng = np.random.default_rng(batch)
    prompts = rng.integers(3, systems.config.vocab_size, (batch, PROMPT)).astype(np.int64)
    names = ("hydralearn", "transformers")
    runs = {n: getattr(systems, n) for n in names}
    outputs = {n: runs[n](prompts, NEW) for n in names}  # warm-up: compilation, allocators
    for n in names:
        runs[n](prompts, 1)
    ttft, total = {n: [] for n in names}, {n: [] for n in names}
    for _ in range(reps):  # interleaved, so machine noise hits both alike
        for n in names:
            ttft[n].append(timed(runs[n], prompts, 1)[0])
            total[n].append(timed(runs[n], prompts, NEW)[0])
    row = {"batch": batch, "same_tokens": outputs["hydralearn"] == outputs["transformers"]}
    for n in names:
        first, whole = statistics.median(ttft[n]), statistics.median(total[n])
        row[n] = {"ttft_ms": 1e3 * first, "tpot_ms": 1e3 * (whole - first) / (NEW - 1),
                  "tokens_per_s": batch * NEW / whole}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--tiny", action="store_true", help="a tiny model, prompt and buffers, one rep (a smoke test)")
    args = parser.parse_args()
    global PROMPT, NEW
    if args.tiny:
        PROMPT, NEW, args.reps, args.batches, args.models = 8, 4, 1, "1", "tiny"
        MODELS["tiny"] = TINY_MODEL
    bandwidth, flops = ((memory_bandwidth(2**20), matmul_flops(256)) if args.tiny
                        else (memory_bandwidth(), matmul_flops()))
    print(f"host read bandwidth {bandwidth / 1e9:.1f} GB/s, XLA float32 matmul {flops / 1e9:.0f} "
          f"GFLOP/s; prompt {PROMPT}, {NEW} new tokens, float32, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), jax {jax.__version__}")
    results = {"bandwidth_gb_s": bandwidth / 1e9, "matmul_gflop_s": flops / 1e9, "rows": []}
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as directory:
            systems = Systems(MODELS[name], Path(directory))
            for batch in map(int, args.batches.split(",")):
                row = {"model": name, "params_m": systems.num_params / 1e6, **measure(systems, batch, args.reps)}
                filled = PROMPT + NEW // 2  # the cache's mean fill during decoding
                step_bytes = systems.decode_bytes(batch, filled)
                row["bandwidth_bound_tokens_per_s"] = batch * bandwidth / step_bytes
                row["compute_bound_tokens_per_s"] = batch * flops / systems.decode_flops(batch, filled)
                row["decode_step_mb"] = step_bytes / 1e6
                results["rows"].append(row)
                print_row(row)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def print_row(row: dict) -> None:
    hl, tf = row["hydralearn"], row["transformers"]
    decode = row["batch"] * 1e3 / hl["tpot_ms"]
    memory, compute = row["bandwidth_bound_tokens_per_s"], row["compute_bound_tokens_per_s"]
    print(f"{row['model']} ({row['params_m']:.1f}M) batch {row['batch']} (hydralearn vs "
          f"transformers): TTFT {hl['ttft_ms']:.1f} vs {tf['ttft_ms']:.1f} ms "
          f"(x{tf['ttft_ms'] / hl['ttft_ms']:.2f}), TPOT {hl['tpot_ms']:.2f} vs {tf['tpot_ms']:.2f} ms "
          f"(x{tf['tpot_ms'] / hl['tpot_ms']:.2f}), tokens/s {hl['tokens_per_s']:.0f} vs "
          f"{tf['tokens_per_s']:.0f} (x{hl['tokens_per_s'] / tf['tokens_per_s']:.2f}); same tokens: "
          f"{row['same_tokens']}\n  decode {decode:.0f} tokens/s: {decode / memory:.0%} of the "
          f"bandwidth bound {memory:.0f} tokens/s ({row['decode_step_mb']:.0f} MB/step), "
          f"{decode / compute:.0%} of the compute bound {compute:.0f} tokens/s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
