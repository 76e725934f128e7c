"""Hugging Face checkpoints (Llama, Mistral, Mixtral, Qwen2/2.5, Qwen3): a local directory of config.json plus
*.safetensors in, a preset-shaped hydralearn config and parameters out, and back.

    loaded = hf.load("/ckpt/Llama-3.2-1B")             # config (TrainConfig) + params
    program = build(loaded.config)
    state = hf.initial_state(program, loaded.params)    # continue training, or sample
    hf.export(state.params, loaded.config, "/out/dir")  # config.json + model.safetensors

Layouts: HF linear weights are (out, in) and computed as x @ W.T; hydralearn's are (in, out),
with attention projections split per head: q (d_model, heads, head_dim), o (heads, head_dim,
d_model). HF's Llama attention uses the same rotate-half RoPE as hydralearn, so q/k need no
permutation. Sliding-window attention is not modelled: a config.json whose window is shorter
than data.seq_len is refused (interop/hf_config.py).
"""

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from safetensors import safe_open
from safetensors.flax import save_file
from safetensors.numpy import save_file as save_numpy

from hydralearn.config import compose as compose_config
from hydralearn.compose.build import Program, TrainState, abstract_params, plain_config
from hydralearn.compose.resolve import resolve
from hydralearn.config.schema import TrainConfig
from hydralearn.errors import ConfigError
from hydralearn.interop.export_rules import peft_modules
from hydralearn.interop.hf_config import from_hf_config, to_hf_config
from hydralearn.interop.hf_layouts import (FFN_LAYOUTS, Array, Tensor, attention_layout, identity,
                                           transpose)


@dataclasses.dataclass(frozen=True)
class Loaded:
    config: TrainConfig  # resolved for the devices present
    params: nnx.State  # hydralearn parameters, in config.model.param_dtype
    overrides: tuple[str, ...]  # the Hydra overrides that describe the checkpoint


def block_tensors(model) -> list[Tensor]:
    """The per-layer tensors; HF names are relative to `model.layers.{i}.`."""
    d, hd = model.d_model, model.resolved_head_dim

    def heads_in(heads: int) -> dict:  # (heads*hd, d) <-> (d, heads, hd)
        return dict(to_ours=lambda w: w.T.reshape(d, heads, hd), to_hf=lambda w: w.reshape(d, -1).T)

    out = [
        Tensor(("attn_norm", "scale"), "input_layernorm.weight", **identity()),
        Tensor(("attention", "q"), "self_attn.q_proj.weight", **heads_in(model.num_heads)),
        Tensor(("attention", "k"), "self_attn.k_proj.weight", **heads_in(model.num_kv_heads)),
        Tensor(("attention", "v"), "self_attn.v_proj.weight", **heads_in(model.num_kv_heads)),
        Tensor(("attention", "o"), "self_attn.o_proj.weight",  # (d, heads*hd) <-> (heads, hd, d)
               to_ours=lambda w: w.T.reshape(model.num_heads, hd, d), to_hf=lambda w: w.reshape(-1, d).T),
        Tensor(("ffn_norm", "scale"), "post_attention_layernorm.weight", **identity()),
    ]
    attention = attention_layout(model)
    if attention is None:
        raise ConfigError([f"model.attention: {model.attention._target_} has no Hugging Face layout"])
    out += attention.tensors(model)
    layout = FFN_LAYOUTS.get(type(model.ffn))
    ffn = layout.tensors(model) if layout else None
    if ffn is not None:
        return out + ffn
    raise ConfigError([f"model.ffn: {model.ffn._target_} (every={getattr(model.ffn, 'every', 1)}) has no Hugging "
                       "Face layout here; use model/ffn=swiglu or model/ffn=moe with every=1 and "
                       "no shared expert"])


def model_tensors(model) -> list[Tensor]:
    out = [Tensor(("embed", "table"), "model.embed_tokens.weight", **identity()),
           Tensor(("final_norm", "scale"), "model.norm.weight", **identity())]
    if not model.tie_embeddings:
        out.append(Tensor(("head",), "lm_head.weight", **transpose()))
    return out


def weight_problems(hf_dir: str | Path, model) -> list[str]:
    """Why the weights in `hf_dir` cannot initialise `model`, from the safetensors headers alone
    (no tensor is read): no safetensors file, one that does not open, a tensor missing or left
    over. Shapes are checked as the weights are read (load_params)."""
    try:
        handles = [safe_open(str(f), framework="numpy") for f in safetensors_files(Path(hf_dir))]
    except ConfigError as e:
        return e.errors
    except Exception as e:  # noqa: BLE001 - safetensors' error for a damaged header
        return [f"{hf_dir}: a *.safetensors file does not open ({type(e).__name__}: {e})"]
    present = {name for h in handles for name in h.keys()}
    wanted = [t.name for t in model_tensors(model)] + [
        f"model.layers.{i}.{t.name.format(e=e)}" for t in block_tensors(model)
        for i in range(model.num_layers) for e in range(max(t.experts, 1))]
    missing = [f"no tensor {n} (is this a checkpoint of the configured family?)" for n in wanted
               if n not in present]
    left = sorted(present - set(wanted))
    errors = missing + [f"tensor {n} has no place in the configured model (it would be ignored)"
                        for n in left if not n.endswith("rotary_emb.inv_freq")]
    return [f"{hf_dir}: {e}" for e in errors[:8]] + (
        [f"{hf_dir}: ... and {len(errors) - 8} more"] if len(errors) > 8 else [])


def safetensors_files(directory: Path) -> list[Path]:
    """The *.safetensors files of a Hugging Face directory; ConfigError if there are none
    (pickle weights are never read: unpickling runs code)."""
    files = sorted(directory.glob("*.safetensors"))
    if files:
        return files
    pickles = sorted(p.name for p in directory.glob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ConfigError([f"{directory}: only pickle weights ({', '.join(pickles[:3])}); hydralearn "
                           "reads *.safetensors only, as unpickling can run code: save them with "
                           "transformers' save_pretrained(..., safe_serialization=True)"])
    raise ConfigError([f"{directory}: no *.safetensors files (expected a Hugging Face checkpoint)"])


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def overrides(hf_dir: str | Path, *, seq_len: int | None = None) -> list[str]:
    """Hydra overrides that give a model shaped like the checkpoint (family preset + keys);
    `seq_len`: the run's sequence length (a shorter sliding window is refused)."""
    return from_hf_config(_read_json(Path(hf_dir) / "config.json"), seq_len=seq_len)


def load(hf_dir: str | Path, *extra_overrides: str, device_count: int = 1) -> Loaded:
    """Compose the checkpoint's config (plus `extra_overrides`) and read its weights."""
    found = overrides(hf_dir, seq_len=compose_config.load(list(extra_overrides)).data.seq_len)
    config = compose_config.load([*found, *extra_overrides])
    config = resolve(config, device_count=device_count)
    return Loaded(config=config, params=load_params(hf_dir, config), overrides=tuple(found))


def load_params(hf_dir: str | Path, config: TrainConfig, *, shardings: nnx.State | None = None) -> nnx.State:
    """The checkpoint's weights as hydralearn parameters shaped for `config` (without its
    adapter); ConfigError naming each tensor that is missing, mis-shaped or left unused.
    With `shardings` (Program.plain_shardings) each device reads only its own shard."""
    model = config.model
    _, abstract = abstract_params(plain_config(config))
    pure = nnx.to_pure_dict(abstract)
    places = nnx.to_pure_dict(shardings) if shardings is not None else None
    reader = _Reader(Path(hf_dir))

    def put(path, host):
        host = np.asarray(host, dtype=_get(pure, path).dtype)
        if places is None:
            return jnp.asarray(host)
        return jax.make_array_from_callback(host.shape, _get(places, path), lambda index: host[index])

    for t in model_tensors(model):
        weight = reader.convert(t, t.name, _get(pure, t.path).shape)
        if weight is not None:
            _set(pure, t.path, put(t.path, weight))
    for t in block_tensors(model):
        path = ("blocks", *t.path)
        layer_shape = _get(pure, path).shape[2:] if t.experts else _get(pure, path).shape[1:]
        layers = [[reader.convert(t, f"model.layers.{i}.{t.name.format(e=e)}", layer_shape)
                   for e in range(max(t.experts, 1))] for i in range(model.num_layers)]
        if not reader.errors:
            stacked = np.stack([np.stack(x) for x in layers]) if t.experts else np.stack([x[0] for x in layers])
            _set(pure, path, put(path, stacked))
    errors = reader.errors + reader.unused()
    if errors:
        raise ConfigError([f"{hf_dir}: {e}" for e in errors[:8]] + (
            [f"{hf_dir}: ... and {len(errors) - 8} more"] if len(errors) > 8 else []))
    nnx.replace_by_pure_dict(abstract, pure)
    return abstract


def export(params: nnx.State, config: TrainConfig, out_dir: str | Path, *,
           max_position_embeddings: int = 4096) -> Path:
    """Write config.json and model.safetensors in the Hugging Face layout; returns out_dir."""
    model, out = config.model, Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pure = nnx.to_pure_dict(params)
    tensors = {t.name: t.to_hf(jnp.asarray(_get(pure, t.path))) for t in model_tensors(model)}
    for t in block_tensors(model):
        stacked = jnp.asarray(_get(pure, ("blocks", *t.path)))
        for i in range(model.num_layers):
            for e in range(max(t.experts, 1)):
                weight = stacked[i, e] if t.experts else stacked[i]
                tensors[f"model.layers.{i}.{t.name.format(e=e)}"] = t.to_hf(weight)
    save_file({k: jnp.array(v) for k, v in tensors.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})  # transformers refuses files without this tag
    hf_config = to_hf_config(model, max_position_embeddings=max_position_embeddings)
    (out / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n")
    return out


def export_adapter(params: nnx.State, config: TrainConfig, out_dir: str | Path) -> Path:
    """A LoRA run's adapters in PEFT's format (adapter_config.json, adapter_model.safetensors),
    for the base model `export` writes; the caller checked export_rules.adapter_errors."""
    model, adapter, out = config.model, config.model.adapter, Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    blocks = nnx.to_pure_dict(params)["blocks"]
    modules = peft_modules(model)
    tensors = {}
    for target in adapter.targets:
        module, _, attr = modules[target].partition(".")
        weight = _get(blocks, ("attention" if module == "self_attn" else "ffn", target))
        a, b = np.asarray(weight["a"]), np.asarray(weight["b"])  # (L, *in, r), (L, r, *out)
        for i in range(model.num_layers):  # PEFT: A (r, in), B (out, r), delta = B @ A
            name = f"base_model.model.model.layers.{i}.{modules[target]}"
            tensors[f"{name}.lora_A.weight"] = np.ascontiguousarray(a[i].reshape(-1, adapter.rank).T)
            tensors[f"{name}.lora_B.weight"] = np.ascontiguousarray(b[i].reshape(adapter.rank, -1).T)
    save_numpy(tensors, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    (out / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": adapter.rank, "lora_alpha": adapter.alpha,
        "target_modules": sorted(modules[t].rpartition(".")[2] for t in adapter.targets),
        "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
        "inference_mode": True, "base_model_name_or_path": None}, indent=2) + "\n")
    return out


def initial_state(program: Program, params: nnx.State) -> TrainState:
    """A fresh training state (step 0, fresh optimizer moments, fresh adapters) holding `params`."""
    return program.start_from(jax.device_put(params, program.plain_shardings))


class _Reader:
    """Tensors by name across every *.safetensors file of a directory, converted to our
    layout; problems are collected in `errors` (one line each) rather than raised one by one."""

    def __init__(self, directory: Path):
        self.handles = [safe_open(str(f), framework="flax") for f in safetensors_files(directory)]
        self.where = {name: h for h in self.handles for name in h.keys()}
        self.errors: list[str] = []
        self.used: set[str] = set()

    def unused(self) -> list[str]:
        """Tensors no parameter took: the checkpoint computes something this config does not
        (RoPE's inv_freq buffers, derived from config.json, excepted)."""
        left = sorted(n for n in self.where if n not in self.used and not n.endswith("rotary_emb.inv_freq"))
        return [f"tensor {n} has no place in the configured model (it would be ignored)" for n in left]

    def convert(self, t: Tensor, name: str, shape: tuple[int, ...]) -> Array | None:
        if name not in self.where:
            self.errors.append(f"no tensor {name} (is this a checkpoint of the configured family?)")
            return None
        self.used.add(name)
        with jax.default_device(jax.devices("cpu")[0]):  # host memory, never an accelerator's
            weight = np.asarray(self.where[name].get_tensor(name).astype(jnp.float32))
        try:
            ours = t.to_ours(weight)
        except ValueError:
            ours = None
        if ours is None or ours.shape != tuple(shape):
            self.errors.append(f"{name}: checkpoint shape {weight.shape} does not fit the config "
                               f"(expected {shape} in hydralearn's layout); check model.* against config.json")
            return None
        return ours


def _get(tree: dict, path: tuple[str, ...]):
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: dict, path: tuple[str, ...], value) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError([f"{path}: not found (expected a Hugging Face checkpoint directory)"])
    return json.loads(path.read_text())
