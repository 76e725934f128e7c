"""Hugging Face config.json <-> hydralearn Hydra overrides (Llama, Mistral, Mixtral).

Reads both spellings of RoPE settings: `rope_theta` + `rope_scaling` (transformers 4.x,
published checkpoints) and `rope_parameters` (transformers 5.x); writes the 4.x spelling,
which both read.
"""

from typing import Any

from hydralearn.errors import ConfigError

# model_type -> (preset giving the defaults list, HF architecture class)
FAMILIES = {
    "llama": ("llama3_8b", "LlamaForCausalLM"),
    "mistral": ("mistral_7b", "MistralForCausalLM"),
    "mixtral": ("mixtral_8x7b", "MixtralForCausalLM"),
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
POSITION_CONFIGS = {"RoPEConfig": "default", "LinearRoPEConfig": "linear", "Llama3RoPEConfig": "llama3",
                    "YaRNConfig": "yarn"}


def from_hf_config(hf: dict) -> list[str]:
    """Overrides for `compose_config.load` that reproduce the checkpoint's architecture."""
    family = hf.get("model_type")
    if family not in FAMILIES:
        raise ConfigError([f"config.json model_type={family!r} is not supported; supported: "
                           f"{', '.join(FAMILIES)}"])
    _refuse_unsupported(hf)
    heads = hf["num_attention_heads"]
    out = [f"model={FAMILIES[family][0]}",
           f"model.vocab_size={hf['vocab_size']}", f"model.d_model={hf['hidden_size']}",
           f"model.num_layers={hf['num_hidden_layers']}", f"model.num_heads={heads}",
           f"model.num_kv_heads={hf.get('num_key_value_heads') or heads}",
           f"++model.head_dim={hf.get('head_dim') or hf['hidden_size'] // heads}",
           f"model.ffn_dim={hf['intermediate_size']}",
           f"++model.tie_embeddings={bool(hf.get('tie_word_embeddings', False))}",
           f"model.norm.eps={float(hf.get('rms_norm_eps', 1e-6))}"]
    out += _position(hf)
    if family == "mixtral":  # dropless and renormalised top-k, as HF's Mixtral computes
        out += ["model/ffn=moe", f"model.ffn.num_experts={hf['num_local_experts']}",
                f"model.ffn.top_k={hf['num_experts_per_tok']}", "model.ffn.dispatch=dropless",
                "model.ffn.top_k_weights=renormalized", "model.ffn.expert_dim=null"]
    else:
        out.append("model/ffn=swiglu")
    return out


def _refuse_unsupported(hf: dict) -> None:
    errors = []
    if hf.get("hidden_act", "silu") != "silu":
        errors.append(f"config.json hidden_act={hf['hidden_act']!r}: only silu (SwiGLU) is supported")
    for key in ("attention_bias", "mlp_bias"):
        if hf.get(key):
            errors.append(f"config.json {key}=true: biases are not supported")
    if errors:
        raise ConfigError(errors)


def _rope(hf: dict) -> tuple[float, dict]:
    """(theta, scaling dict with `rope_type`) from either spelling."""
    params = dict(hf.get("rope_parameters") or {})
    theta = params.pop("rope_theta", hf.get("rope_theta", 10000.0))
    scaling = dict(hf.get("rope_scaling") or params)
    scaling.setdefault("rope_type", scaling.pop("type", "default"))
    return float(theta), scaling


def _position(hf: dict) -> list[str]:
    theta, scaling = _rope(hf)
    kind = scaling.get("rope_type") or "default"
    if kind not in ROPE_TYPES:
        raise ConfigError([f"config.json rope_type={kind!r} is not supported; supported: "
                           f"{', '.join(ROPE_TYPES)}"])
    option, keys = ROPE_TYPES[kind]
    if kind == "yarn" and any(scaling.get(k) for k in ("attention_factor", "mscale", "mscale_all_dim")):
        raise ConfigError(["config.json yarn attention_factor/mscale are not supported"])
    out = [f"model.rope_theta={theta}", f"model/position={option}"]
    return out + [f"model.position.{ours}={scaling[theirs]}" for ours, theirs in keys.items()
                  if scaling.get(theirs) is not None]


def to_hf_config(model: Any, *, max_position_embeddings: int) -> dict:
    """config.json for a hydralearn model config (Llama if dense, Mixtral if MoE)."""
    family = "mixtral" if type(model.ffn).__name__ == "MoEConfig" else "llama"
    out = {
        "architectures": [FAMILIES[family][1]], "model_type": family,
        "vocab_size": model.vocab_size, "hidden_size": model.d_model,
        "intermediate_size": (getattr(model.ffn, "expert_dim", None) or model.ffn_dim),
        "num_hidden_layers": model.num_layers, "num_attention_heads": model.num_heads,
        "num_key_value_heads": model.num_kv_heads, "head_dim": model.resolved_head_dim,
        "hidden_act": "silu", "rms_norm_eps": model.norm.eps,
        "tie_word_embeddings": model.tie_embeddings, "attention_bias": False,
        "max_position_embeddings": max_position_embeddings, "rope_theta": model.rope_theta,
        "rope_scaling": _rope_scaling(model.position), "torch_dtype": model.param_dtype,
    }
    if family == "mixtral":
        out |= {"num_local_experts": model.ffn.num_experts, "num_experts_per_tok": model.ffn.top_k}
    else:
        out["mlp_bias"] = False
    return out


def _rope_scaling(position: Any) -> dict | None:
    name = type(position).__name__
    if name not in POSITION_CONFIGS:
        raise ConfigError([f"model.position: {position._target_} has no Hugging Face equivalent"])
    kind = POSITION_CONFIGS[name]
    if kind == "default":
        return None
    return {"rope_type": kind, **{theirs: getattr(position, ours)
                                  for ours, theirs in ROPE_TYPES[kind][1].items()}}
