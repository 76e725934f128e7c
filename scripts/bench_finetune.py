"""Fine-tuning costs, measured side by side in one process (docs/finetune.md):

1. Hugging Face import (`hf.load_params` into the run's shardings) and export (`hf.export`)
   throughput in GB/s of safetensors, next to this disk's sequential write and read of a file
   of the same size, measured in the same run, interleaved. The page cache is not dropped
   (shared machine): the reads of both are whatever the cache gives, alike.
2. LoRA vs full fine-tuning: step time (interleaved, median) and optimizer-state bytes, from
   the state's shapes and from XLA's compiled memory analysis of the train step.

    .venv/bin/python scripts/bench_finetune.py [--d-model 1024 --layers 16] [--rounds 3] [--tiny]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

from hydralearn.config import compose as compose_config
from hydralearn.compose.build import build
from hydralearn.compose.resolve import resolve
from hydralearn.interop import hf


def write_hf(directory: Path, *, d: int, layers: int, vocab: int, ffn: int) -> int:
    """A random Llama checkpoint in bf16 (numpy, no torch); returns its bytes."""
    heads, kv, hd = d // 64, max(d // 256, 1), 64
    rng = np.random.default_rng(0)
    tensors = {"model.embed_tokens.weight": (vocab, d), "model.norm.weight": (d,), "lm_head.weight": (vocab, d)}
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors |= {p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,),
                    p + "self_attn.q_proj.weight": (heads * hd, d), p + "self_attn.k_proj.weight": (kv * hd, d),
                    p + "self_attn.v_proj.weight": (kv * hd, d), p + "self_attn.o_proj.weight": (d, heads * hd),
                    p + "mlp.gate_proj.weight": (ffn, d), p + "mlp.up_proj.weight": (ffn, d),
                    p + "mlp.down_proj.weight": (d, ffn)}
    arrays = {k: (rng.standard_normal(s, np.float32) * 0.02).astype(ml_dtypes.bfloat16) for k, s in tensors.items()}
    save_file(arrays, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps({
        "model_type": "llama", "vocab_size": vocab, "hidden_size": d, "intermediate_size": ffn,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
        "head_dim": hd, "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "rope_theta": 10000.0}))
    return sum(a.nbytes for a in arrays.values())


def disk_write(path: Path, nbytes: int) -> float:
    block = os.urandom(1 << 24)
    start = time.perf_counter()
    with path.open("wb") as f:
        for _ in range(nbytes // len(block)):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - start


def disk_read(path: Path) -> float:
    start = time.perf_counter()
    with path.open("rb") as f:
        while f.read(1 << 24):
            pass
    return time.perf_counter() - start


def io_bench(args) -> dict:
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        (tmp / "hf").mkdir()
        nbytes = write_hf(tmp / "hf", d=args.d_model, layers=args.layers, vocab=32000, ffn=4 * args.d_model)
        config = resolve(compose_config.load([f"init.hf={tmp / 'hf'}", "model.param_dtype=bfloat16",
                                              *hf.overrides(tmp / "hf")]), device_count=1)
        program = build(config, devices=jax.devices()[:1])
        times = {"import": [], "export": [], "disk_read": [], "disk_write": []}
        for r in range(args.rounds):
            times["disk_write"].append(disk_write(tmp / "plain.bin", nbytes))
            times["disk_read"].append(disk_read(tmp / "plain.bin"))
            start = time.perf_counter()
            params = jax.block_until_ready(hf.load_params(tmp / "hf", config, shardings=program.plain_shardings))
            times["import"].append(time.perf_counter() - start)
            start = time.perf_counter()
            hf.export(params, config, tmp / f"out{r}")
            os.sync()
            times["export"].append(time.perf_counter() - start)
            del params
        return {"params": program.num_params, "gb": nbytes / 1e9,
                **{f"{k}_gb_s": nbytes / 1e9 / statistics.median(v) for k, v in times.items()}}


def step_bench(args) -> dict:
    shape = ["model=llama_tiny", f"model.d_model={args.step_d_model}", f"model.num_layers={args.step_layers}",
             "model.num_heads=8", "model.num_kv_heads=8", f"model.ffn_dim={4 * args.step_d_model}",
             "data=synthetic", "data.seq_len=128", "data.batch_size=4"]
    out, programs = {}, {}
    for name, extra in (("full", []), ("lora", ["model/adapter=lora", "model.adapter.rank=16"])):
        program = build(resolve(compose_config.load([*shape, *extra]), device_count=1), devices=jax.devices()[:1])
        state = program.init_state()
        x = jnp.zeros((4, 128), jnp.int32)
        compiled = program.train_step.lower(state, x, x).compile()
        memory = compiled.memory_analysis()
        opt = jax.eval_shape(program.init_state).opt_state
        out[name] = {"opt_state_bytes": sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(opt)),
                     "compiled_argument_bytes": memory.argument_size_in_bytes,
                     "compiled_temp_bytes": memory.temp_size_in_bytes, "step_s": []}
        programs[name] = [program, state, x]
    for _ in range(args.rounds * 3):  # interleaved
        for name, (program, state, x) in programs.items():
            start = time.perf_counter()
            state, metrics = program.train_step(state, x, x)
            jax.block_until_ready(metrics)
            out[name]["step_s"].append(time.perf_counter() - start)
            programs[name][1] = state
    for name in out:
        out[name]["step_s"] = statistics.median(out[name]["step_s"][1:])  # first: warm-up
    out["params"] = int(programs["full"][0].num_params)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--step-d-model", type=int, default=512)
    parser.add_argument("--step-layers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the files go (default: the system's temp dir)")
    parser.add_argument("--tiny", action="store_true", help="tiny models, one round (a smoke test)")
    args = parser.parse_args()
    if args.tiny:
        args.d_model, args.layers, args.step_d_model, args.step_layers, args.rounds = 128, 1, 64, 1, 1
    result = {"io": io_bench(args), "step": step_bench(args), "devices": str(jax.devices()[0])}
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
