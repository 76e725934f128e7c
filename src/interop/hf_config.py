"""Hugging Face config.json <-> hydralearn Hydra overrides (Llama, Mistral, Mixtral).

Reads both spellings of RoPE settings: `rope_theta` + `rope_scaling` (transformers 4.x,
published checkpoints) and `rope_parameters` (transformers 5.x); writes the 4.x spelling,
which both read. Every config.json field is either honoured (turned into an override or
checked to have the one value hydralearn computes), known not to change the forward pass
(FORWARD_NEUTRAL), or refused by name: an unknown field might change the computation.
"""

from typing import Any

from hydralearn.errors import ConfigError
from hydralearn.interop.hf_layouts import FFN_LAYOUTS, POSITIONS

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

# hydralearn key -> the config.json field it comes from (for mismatch messages)
HF_NAMES = {"model.vocab_size": "vocab_size", "model.d_model": "hidden_size",
            "model.num_layers": "num_hidden_layers", "model.num_heads": "num_attention_heads",
            "model.num_kv_heads": "num_key_value_heads", "model.head_dim": "head_dim",
            "model.ffn_dim": "intermediate_size", "model.tie_embeddings": "tie_word_embeddings",
            "model.norm.eps": "rms_norm_eps", "model.rope_theta": "rope_theta",
            "model.ffn.num_experts": "num_local_experts", "model.ffn.top_k": "num_experts_per_tok"}
# Fields turned into overrides or checked below.
HONOURED = frozenset({
    "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps", "tie_word_embeddings",
    "rope_theta", "rope_scaling", "rope_parameters", "num_local_experts", "num_experts_per_tok",
    "hidden_act", "attention_bias", "mlp_bias", "sliding_window", "attention_dropout",
    "router_jitter_noise", "pretraining_tp"})
# Fields that do not change logits or gradients: token ids, initialisation, caching, dtype of
# the file (weights are converted to model.param_dtype), HF's own aux-loss switches (the
# run's MoE losses are model.ffn.load_balance_weight / router_z_weight).
FORWARD_NEUTRAL = frozenset({
    "architectures", "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range",
    "max_position_embeddings", "use_cache", "transformers_version", "torch_dtype", "dtype",
    "output_router_logits", "router_aux_loss_coef", "output_attentions", "output_hidden_states",
    "return_dict", "is_decoder", "tie_encoder_decoder"})


def from_hf_config(hf: dict, *, seq_len: int | None = None) -> list[str]:
    """Overrides for `compose_config.load` that reproduce the checkpoint's architecture;
    ConfigError naming every field hydralearn cannot honour (`seq_len`: the run's sequence
    length, against which a sliding window is judged)."""
    family = hf.get("model_type")
    if family not in FAMILIES:
        raise ConfigError([f"config.json model_type={family!r} is not supported; supported: "
                           f"{', '.join(FAMILIES)}"])
    _refuse_unsupported(hf, seq_len)
    heads = hf["num_attention_heads"]
    out = [f"model={FAMILIES[family][0]}",
           f"model.vocab_size={hf['vocab_size']}", f"model.d_model={hf['hidden_size']}",
           f"model.num_layers={hf['num_hidden_layers']}", f"model.num_heads={heads}",
           f"model.num_kv_heads={hf.get('num_key_value_heads') or heads}",
           f"++model.head_dim={hf.get('head_dim') or hf['hidden_size'] // heads}",
           f"model.ffn_dim={hf['intermediate_size']}",
           f"++model.tie_embeddings={bool(hf.get('tie_word_embeddings', False))}",
           "model/norm=rms", f"model.norm.eps={float(hf.get('rms_norm_eps', 1e-6))}"]
    out += _position(hf)
    if family == "mixtral":  # dropless and renormalised top-k, as HF's Mixtral computes
        out += ["model/ffn=moe", f"model.ffn.num_experts={hf['num_local_experts']}",
                f"model.ffn.top_k={hf['num_experts_per_tok']}", "model.ffn.dispatch=dropless",
                "model.ffn.top_k_weights=renormalized", "model.ffn.expert_dim=null",
                "model.ffn.every=1", "model.ffn.shared_expert_dim=0"]
    else:
        out.append("model/ffn=swiglu")
    return out


def _refuse_unsupported(hf: dict, seq_len: int | None) -> None:
    errors = [f"config.json field {key!r} is not known to hydralearn's importer (it may change "
              "the computation); remove it from config.json if it does not"
              for key in sorted(hf) if key not in HONOURED | FORWARD_NEUTRAL and not key.startswith("_")]
    if hf.get("hidden_act", "silu") != "silu":
        errors.append(f"config.json hidden_act={hf['hidden_act']!r}: only silu (SwiGLU) is supported")
    for key in ("attention_bias", "mlp_bias"):
        if hf.get(key):
            errors.append(f"config.json {key}=true: biases are not supported")
    for key in ("attention_dropout", "router_jitter_noise"):
        if hf.get(key):
            errors.append(f"config.json {key}={hf[key]}: hydralearn trains without it; set it to 0")
    if (hf.get("pretraining_tp") or 1) != 1:
        errors.append(f"config.json pretraining_tp={hf['pretraining_tp']}: only 1 is supported")
    window = hf.get("sliding_window")
    if window is not None and (seq_len is None or window < seq_len):
        errors.append(f"config.json sliding_window={window}: sliding-window attention is not modelled "
                      f"(full causal attention differs beyond {window} tokens); use data.seq_len<={window}")
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
    """config.json for a hydralearn model config (the family of its ffn's layout: Llama if
    dense, Mixtral if MoE); the caller has checked with interop.export_rules that the
    architecture expresses it exactly."""
    ffn = FFN_LAYOUTS[type(model.ffn)]
    out = {
        "architectures": [FAMILIES[ffn.family][1]], "model_type": ffn.family,
        "vocab_size": model.vocab_size, "hidden_size": model.d_model,
        "intermediate_size": model.ffn_dim,
        "num_hidden_layers": model.num_layers, "num_attention_heads": model.num_heads,
        "num_key_value_heads": model.num_kv_heads, "head_dim": model.resolved_head_dim,
        "hidden_act": "silu", "rms_norm_eps": model.norm.eps,
        "tie_word_embeddings": model.tie_embeddings, "attention_bias": False,
        "max_position_embeddings": max_position_embeddings, "rope_theta": model.rope_theta,
        "rope_scaling": _rope_scaling(model.position), "torch_dtype": model.param_dtype,
    }
    return out | ffn.config_json(model)  # keys already here keep their place


def _rope_scaling(position: Any) -> dict | None:
    kind = POSITIONS[type(position)]
    if kind == "default":
        return None
    return {"rope_type": kind, **{theirs: getattr(position, ours)
                                  for ours, theirs in ROPE_TYPES[kind][1].items()}}
