"""Hugging Face config.json <-> hydralearn Hydra overrides (Llama, Mistral, Mixtral, Qwen2/2.5,
Qwen3).

Reads both spellings of RoPE settings: `rope_theta` + `rope_scaling` (transformers 4.x,
published checkpoints) and `rope_parameters` (transformers 5.x), with transformers' priority
(rope_scaling over rope_parameters); writes the 4.x spelling, which both read. Every
config.json field, present or absent, means here what it means to transformers' config class
of that model_type: it is honoured (turned into an override, or checked to have the one value
hydralearn computes; an absent field takes that class's default), known not to change the
forward pass (FORWARD_NEUTRAL), or refused by name: an unknown field might change the
computation. Keys inside `rope_scaling` are held to the same rule.
"""

import dataclasses
from typing import Any

from hydralearn.errors import ConfigError
from hydralearn.interop.hf_layouts import FFN_LAYOUTS, POSITIONS, hf_family


@dataclasses.dataclass(frozen=True)
class Family:
    preset: str  # the model preset giving the defaults list
    architecture: str  # the HF architecture class
    attention: str  # the model/attention option its attention is
    fields: frozenset  # its config class's fields that change the computation, beyond COMMON
    defaults: dict  # its config class's defaults, for absent fields (None: refused if absent)


COMMON = frozenset({
    "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps", "tie_word_embeddings",
    "rope_theta", "rope_scaling", "rope_parameters", "hidden_act", "attention_dropout"})
_LLAMA = frozenset({"attention_bias", "mlp_bias", "pretraining_tp"})
_QWEN = frozenset({"use_sliding_window", "sliding_window", "max_window_layers", "layer_types"})
# transformers' Qwen2Config / Qwen3Config defaults (5.18); Qwen3's head_dim is 128 whatever
# hidden_size / num_attention_heads is.
_QWEN_DEFAULTS = dict(vocab_size=151936, hidden_size=4096, intermediate_size=22016,
                      num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, rms_norm_eps=1e-6,
                      max_position_embeddings=32768, use_sliding_window=False, sliding_window=4096,
                      max_window_layers=28)
_REQUIRED = dict(rms_norm_eps=1e-6)  # Llama's: every other size field must be present

FAMILIES = {
    "llama": Family("llama3_8b", "LlamaForCausalLM", "gqa", _LLAMA, _REQUIRED),
    "mistral": Family("mistral_7b", "MistralForCausalLM", "gqa", _LLAMA | {"sliding_window"}, _REQUIRED),
    "mixtral": Family("mixtral_8x7b", "MixtralForCausalLM", "gqa",
                      _LLAMA | {"sliding_window", "num_local_experts", "num_experts_per_tok",
                                "router_jitter_noise"}, _REQUIRED),
    "qwen2": Family("qwen2_5_7b", "Qwen2ForCausalLM", "qkv_bias", _QWEN, _QWEN_DEFAULTS),
    "qwen3": Family("qwen3_8b", "Qwen3ForCausalLM", "qk_norm", _QWEN | {"attention_bias"},
                    _QWEN_DEFAULTS | {"head_dim": 128}),
}

# HF rope_type -> (model/position option, {hydralearn key: HF key})
ROPE_TYPES = {
    "default": ("rope", {}),
    "linear": ("rope_linear", {"factor": "factor"}),
    "llama3": ("rope_llama3", {"factor": "factor", "low_freq_factor": "low_freq_factor",
                               "high_freq_factor": "high_freq_factor",
                               "original_max_position": "original_max_position_embeddings"}),
    "yarn": ("yarn", {"factor": "factor", "original_max_position": "original_max_position_embeddings",
                      "beta_fast": "beta_fast", "beta_slow": "beta_slow"}),
}
# Keys of a rope_scaling dict that hydralearn checks itself (below) beyond ROPE_TYPES' maps.
ROPE_CHECKED = {"rope_type", "type", "rope_theta", "partial_rotary_factor", "attention_factor",
                "mscale", "mscale_all_dim", "truncate"}

# hydralearn key -> the config.json field it comes from (for mismatch messages)
HF_NAMES = {"model.vocab_size": "vocab_size", "model.d_model": "hidden_size",
            "model.num_layers": "num_hidden_layers", "model.num_heads": "num_attention_heads",
            "model.num_kv_heads": "num_key_value_heads", "model.head_dim": "head_dim",
            "model.ffn_dim": "intermediate_size", "model.tie_embeddings": "tie_word_embeddings",
            "model.norm.eps": "rms_norm_eps", "model.rope_theta": "rope_theta",
            "model.ffn.num_experts": "num_local_experts", "model.ffn.top_k": "num_experts_per_tok"}
# Fields that do not change logits or gradients: token ids, initialisation, caching, dtype of
# the file (weights are converted to model.param_dtype), HF's own aux-loss switches (the
# run's MoE losses are model.ffn.load_balance_weight / router_z_weight). max_position_embeddings
# is read where it does matter (yarn without original_max_position_embeddings).
FORWARD_NEUTRAL = frozenset({
    "architectures", "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range",
    "max_position_embeddings", "use_cache", "transformers_version", "torch_dtype", "dtype",
    "output_router_logits", "router_aux_loss_coef", "output_attentions", "output_hidden_states",
    "return_dict", "is_decoder", "tie_encoder_decoder"})
SIZES = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")


def from_hf_config(hf: dict, *, seq_len: int | None = None) -> list[str]:
    """Overrides for `compose_config.load` that reproduce the checkpoint's architecture;
    ConfigError naming every field hydralearn cannot honour (`seq_len`: the run's sequence
    length, against which a Mistral sliding window is judged)."""
    name = hf.get("model_type")
    if name not in FAMILIES:
        raise ConfigError([f"config.json model_type={name!r} is not supported; supported: "
                           f"{', '.join(FAMILIES)}"])
    family = FAMILIES[name]
    hf = family.defaults | hf  # absent fields mean the config class's defaults
    _refuse_unsupported(hf, family, seq_len)
    heads = hf["num_attention_heads"]
    out = [f"model={family.preset}", f"model/attention={family.attention}",
           f"model.vocab_size={hf['vocab_size']}", f"model.d_model={hf['hidden_size']}",
           f"model.num_layers={hf['num_hidden_layers']}", f"model.num_heads={heads}",
           f"model.num_kv_heads={hf.get('num_key_value_heads') or heads}",
           f"++model.head_dim={hf.get('head_dim') or hf['hidden_size'] // heads}",
           f"model.ffn_dim={hf['intermediate_size']}",
           f"++model.tie_embeddings={bool(hf.get('tie_word_embeddings', False))}",
           "model/norm=rms", f"model.norm.eps={float(hf['rms_norm_eps'])}"]
    out += _position(hf)
    if name == "mixtral":  # dropless and renormalised top-k, as HF's Mixtral computes
        out += ["model/ffn=moe", f"model.ffn.num_experts={hf['num_local_experts']}",
                f"model.ffn.top_k={hf['num_experts_per_tok']}", "model.ffn.dispatch=dropless",
                "model.ffn.top_k_weights=renormalized", "model.ffn.expert_dim=null",
                "model.ffn.every=1", "model.ffn.shared_expert_dim=0"]
    else:
        out.append("model/ffn=swiglu")
    return out


def _refuse_unsupported(hf: dict, family: Family, seq_len: int | None) -> None:
    known = COMMON | family.fields | FORWARD_NEUTRAL
    errors = [f"config.json field {key!r} is not known to hydralearn's importer for model_type "
              f"{hf['model_type']!r} (it may change the computation); remove it from config.json if "
              "it does not" for key in sorted(hf) if key not in known and not key.startswith("_")]
    errors += [f"config.json has no {key} (model_type {hf['model_type']!r} has no default for it)"
               for key in SIZES if hf.get(key) is None]
    qwen = "use_sliding_window" in family.fields
    if "head_dim" in hf and hf["head_dim"] is None and qwen:
        errors.append("config.json head_dim=null: transformers cannot build this model; give a number")
    if hf.get("hidden_act", "silu") != "silu":
        errors.append(f"config.json hidden_act={hf['hidden_act']!r}: only silu (SwiGLU) is supported")
    for key in ("attention_bias", "mlp_bias"):
        if hf.get(key):
            errors.append(f"config.json {key}=true: biases there are not supported")
    for key in ("attention_dropout", "router_jitter_noise"):
        if hf.get(key):
            errors.append(f"config.json {key}={hf[key]}: hydralearn trains without it; set it to 0")
    if (hf.get("pretraining_tp") or 1) != 1:
        errors.append(f"config.json pretraining_tp={hf['pretraining_tp']}: only 1 is supported")
    if qwen:
        errors += _qwen_window_errors(hf)
    else:
        window = hf.get("sliding_window")
        if window is not None and (seq_len is None or window < seq_len):
            errors.append(f"config.json sliding_window={window}: sliding-window attention is not "
                          f"modelled (full causal attention differs beyond {window} tokens); use "
                          f"data.seq_len<={window}")
    if errors:
        raise ConfigError(errors)


def _qwen_window_errors(hf: dict) -> list[str]:
    """Qwen2/3 as transformers reads them: the window is used only with use_sliding_window,
    on the layers `layer_types` names (default: those from max_window_layers on)."""
    layers = hf["num_hidden_layers"]
    window = hf["sliding_window"] if hf["use_sliding_window"] else None
    first_sliding = layers if window is None else hf["max_window_layers"]
    types = hf.get("layer_types") or ["sliding_attention" if i >= first_sliding else "full_attention"
                                      for i in range(layers)]
    odd = sorted({t for t in types if t not in ("full_attention", "sliding_attention")})
    if odd or len(types) != layers:
        return [f"config.json layer_types: expected {layers} of full_attention/sliding_attention, "
                f"got {len(types)}{' with ' + ', '.join(map(repr, odd)) if odd else ''}"]
    sliding = [i for i, t in enumerate(types) if t == "sliding_attention"]
    if sliding and window is None:
        return ["config.json layer_types has sliding_attention layers but no window (use_sliding_window "
                "is false): transformers cannot run this model"]
    if sliding:
        return [f"config.json use_sliding_window=true: layers {sliding[0]}..{sliding[-1]} attend within "
                f"{window} tokens; sliding-window attention is not modelled for model_type "
                f"{hf['model_type']!r}"]
    return []


def _rope(hf: dict) -> tuple[float, dict]:
    """(theta, scaling dict with `rope_type`) as transformers reads them: rope_scaling wins
    over rope_parameters; theta from that dict, else the top-level rope_theta, else 10000."""
    scaling = dict(hf.get("rope_scaling") or hf.get("rope_parameters") or {})
    theta = scaling.pop("rope_theta", hf.get("rope_theta", 10000.0))
    scaling["rope_type"] = scaling.get("rope_type", scaling.pop("type", "default"))
    return float(theta), scaling


def _position(hf: dict) -> list[str]:
    theta, scaling = _rope(hf)
    kind = scaling.get("rope_type") or "default"
    if kind not in ROPE_TYPES:
        raise ConfigError([f"config.json rope_type={kind!r} is not supported; supported: "
                           f"{', '.join(ROPE_TYPES)}"])
    option, keys = ROPE_TYPES[kind]
    known = ROPE_CHECKED | set(keys.values())
    errors = [f"config.json rope_scaling key {key!r} is not known to hydralearn's importer for "
              f"rope_type {kind!r}" for key in sorted(scaling) if key not in known]
    if scaling.get("partial_rotary_factor", 1.0) != 1.0:
        errors.append(f"config.json partial_rotary_factor={scaling['partial_rotary_factor']}: "
                      "only rotation of the whole head is supported")
    if kind != "yarn":
        errors += [f"config.json rope_scaling key {key!r} is not used by rope_type {kind!r}"
                   for key in ("attention_factor", "mscale", "mscale_all_dim", "truncate") if key in scaling]
    else:
        scaling.setdefault("original_max_position_embeddings", hf.get("max_position_embeddings"))
        if scaling["original_max_position_embeddings"] is None:
            errors.append("config.json yarn rope_scaling needs original_max_position_embeddings "
                          "(or max_position_embeddings)")
        if any(scaling.get(k) is not None for k in ("attention_factor", "mscale", "mscale_all_dim")):
            errors.append("config.json yarn attention_factor/mscale/mscale_all_dim are not supported")
        if scaling.get("truncate", True) is not True:
            errors.append(f"config.json yarn truncate={scaling['truncate']}: only truncated "
                          "correction ranges (the default) are supported")
    if kind != "default" and scaling.get("factor") is None:
        errors.append(f"config.json rope_scaling has no factor (rope_type {kind!r} needs one)")
    if errors:
        raise ConfigError(errors)
    out = [f"model.rope_theta={theta}", f"model/position={option}"]
    return out + [f"model.position.{ours}={scaling[theirs]}" for ours, theirs in keys.items()
                  if scaling.get(theirs) is not None]


def to_hf_config(model: Any, *, max_position_embeddings: int) -> dict:
    """config.json for a hydralearn model config, in the family that computes what it computes
    (interop.hf_layouts.hf_family); the caller has checked with interop.export_rules that the
    architecture expresses it exactly."""
    name = hf_family(model)
    out = {
        "architectures": [FAMILIES[name].architecture], "model_type": name,
        "vocab_size": model.vocab_size, "hidden_size": model.d_model,
        "intermediate_size": model.ffn_dim,
        "num_hidden_layers": model.num_layers, "num_attention_heads": model.num_heads,
        "num_key_value_heads": model.num_kv_heads, "head_dim": model.resolved_head_dim,
        "hidden_act": "silu", "rms_norm_eps": model.norm.eps,
        "tie_word_embeddings": model.tie_embeddings, "attention_bias": False,
        "max_position_embeddings": max_position_embeddings, "rope_theta": model.rope_theta,
        "rope_scaling": _rope_scaling(model.position), "torch_dtype": model.param_dtype,
    }
    out |= FFN_LAYOUTS[type(model.ffn)].config_json(model)  # keys already here keep their place
    if "use_sliding_window" in FAMILIES[name].fields:
        out["use_sliding_window"] = False
    known = COMMON | FAMILIES[name].fields | FORWARD_NEUTRAL
    return {k: v for k, v in out.items() if k in known}  # e.g. no attention_bias for qwen2


def _rope_scaling(position: Any) -> dict | None:
    kind = POSITIONS[type(position)]
    if kind == "default":
        return None
    return {"rope_type": kind, **{theirs: getattr(position, ours)
                                  for ours, theirs in ROPE_TYPES[kind][1].items()}}
