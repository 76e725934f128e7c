"""The Hugging Face layout of each layer option that has one, registered per option and keyed
by its config class (as torchtitan keeps a state-dict adapter per model). hf.py converts the
weights, hf_config.py writes config.json and export_rules.py checks a run through the entry of
the option the run chose; none of them names an option. An option with no entry here has no
Hugging Face layout, and is refused.

Keys are classes, not names: another class of the same name (a plugin's, say) is another
option, and a subclass (YaRN of RoPE) has its own entry.
"""

import dataclasses
from typing import Any, Callable

from hydralearn.layers.attention.gqa_config import AttentionConfig
from hydralearn.layers.attention.qk_norm_config import QKNormConfig
from hydralearn.layers.attention.qkv_bias_config import QKVBiasConfig
from hydralearn.layers.ffn.moe_config import MoEConfig
from hydralearn.layers.ffn.swiglu_config import SwiGLUConfig
from hydralearn.layers.position.rope_config import RoPEConfig
from hydralearn.layers.position.rope_linear_config import LinearRoPEConfig
from hydralearn.layers.position.rope_llama3_config import Llama3RoPEConfig
from hydralearn.layers.position.yarn_config import YaRNConfig

Array = Any  # numpy or jax array


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One hydralearn parameter (path inside a block, or in the model) <-> HF tensor(s)."""

    path: tuple[str, ...]
    name: str  # HF name; `{e}` stands for the expert index
    to_ours: Callable[[Array], Array]
    to_hf: Callable[[Array], Array]
    experts: int = 0  # > 0: one HF tensor per expert, stacked on our axis 0


def transpose() -> dict:
    """HF linear weights are (out, in); ours (in, out)."""
    return dict(to_ours=lambda w: w.T, to_hf=lambda w: w.T)


def identity() -> dict:
    return dict(to_ours=lambda w: w, to_hf=lambda w: w)


@dataclasses.dataclass(frozen=True)
class Rule:
    name: str
    broken: Callable[[Any], bool]  # model config -> True if the export would compute otherwise
    why: str


@dataclasses.dataclass(frozen=True)
class FfnLayout:
    """How one `model/ffn` option is written in a Hugging Face checkpoint."""

    family: str  # the HF model_type it exports as (hf_config.FAMILIES)
    # Model config -> the ffn's tensors in one layer (HF names relative to `model.layers.{i}.`);
    # None where one of its settings has no place in the family's layout.
    tensors: Callable[[Any], list[Tensor] | None]
    config_json: Callable[[Any], dict]  # model config -> its config.json fields
    peft_modules: dict[str, str]  # our weight name -> PEFT module path in `model.layers.{i}.`
    rules: tuple[Rule, ...] = ()  # its settings the family computes otherwise (export_rules.py)


def _llama_mlp(model) -> list[Tensor]:
    return [Tensor(("ffn", ours), f"mlp.{ours}_proj.weight", **transpose())
            for ours in ("gate", "up", "down")]


def _mixtral_moe(model) -> list[Tensor] | None:
    if model.ffn.every != 1 or model.ffn.shared_expert_dim:
        return None
    e = model.ffn.num_experts
    return [Tensor(("ffn", "router"), "block_sparse_moe.gate.weight", **transpose())] + [
        Tensor(("ffn", ours), f"block_sparse_moe.experts.{{e}}.{hf}.weight", experts=e, **transpose())
        for ours, hf in (("gate", "w1"), ("up", "w3"), ("down", "w2"))]


MIXTRAL_RULES = (
    Rule("model.ffn.top_k_weights", lambda m: m.ffn.top_k_weights.value != "renormalized",
         "model.ffn.top_k_weights=softmax: Mixtral renormalises the top-k router weights to sum to 1"),
    Rule("model.ffn.dispatch", lambda m: m.ffn.dispatch.value == "capacity"
         and m.ffn.capacity_factor < m.ffn.num_experts / m.ffn.top_k,
         "model.ffn.dispatch=capacity drops tokens past each expert's capacity; Mixtral is dropless. "
         "Train with model.ffn.dispatch=dropless (or model.ffn.capacity_factor>=num_experts/top_k, "
         "which drops nothing)"),
    Rule("model.ffn.every", lambda m: m.ffn.every != 1,
         "model.ffn.every>1: Mixtral has experts in every layer"),
    Rule("model.ffn.shared_expert_dim", lambda m: bool(m.ffn.shared_expert_dim),
         "model.ffn.shared_expert_dim>0: Mixtral has no shared expert"),
)

FFN_LAYOUTS: dict[type, FfnLayout] = {
    SwiGLUConfig: FfnLayout(
        family="llama", tensors=_llama_mlp,
        config_json=lambda m: {"intermediate_size": m.ffn_dim, "mlp_bias": False},
        peft_modules={w: f"mlp.{w}_proj" for w in ("gate", "up", "down")}),
    MoEConfig: FfnLayout(  # the experts' weights have no PEFT module path
        family="mixtral", tensors=_mixtral_moe,
        config_json=lambda m: {"intermediate_size": m.ffn.expert_dim or m.ffn_dim,
                               "num_local_experts": m.ffn.num_experts,
                               "num_experts_per_tok": m.ffn.top_k},
        peft_modules={}, rules=MIXTRAL_RULES),
}

# `model/position` option -> HF rope_type (hf_config.ROPE_TYPES maps its fields)
POSITIONS: dict[type, str] = {RoPEConfig: "default", LinearRoPEConfig: "linear",
                              Llama3RoPEConfig: "llama3", YaRNConfig: "yarn"}


@dataclasses.dataclass(frozen=True)
class AttentionLayout:
    """How one `model/attention` option is written in a Hugging Face checkpoint."""

    # The family of the ffn's layout -> the HF model_type with this attention (absent: none)
    families: dict[str, str]
    # Model config -> its tensors in one layer beyond q, k, v and o (HF names relative to
    # `model.layers.{i}.`)
    tensors: Callable[[Any], list[Tensor]]


def _qkv_biases(model) -> list[Tensor]:
    hd = model.resolved_head_dim

    def heads(n: int) -> dict:  # (n * hd,) <-> (n, hd)
        return dict(to_ours=lambda b: b.reshape(n, hd), to_hf=lambda b: b.reshape(-1))
    return [Tensor(("attention", f"{w}_bias"), f"self_attn.{w}_proj.bias", **heads(n))
            for w, n in (("q", model.num_heads), ("k", model.num_kv_heads), ("v", model.num_kv_heads))]


def _qk_norms(model) -> list[Tensor]:
    return [Tensor(("attention", f"{w}_norm", "scale"), f"self_attn.{w}_norm.weight", **identity())
            for w in ("q", "k")]


ATTENTION_LAYOUTS: dict[type, AttentionLayout] = {
    AttentionConfig: AttentionLayout(families={"llama": "llama", "mixtral": "mixtral"}, tensors=lambda m: []),
    QKVBiasConfig: AttentionLayout(families={"llama": "qwen2"}, tensors=_qkv_biases),
    QKNormConfig: AttentionLayout(families={"llama": "qwen3"}, tensors=_qk_norms),
}


def attention_layout(model) -> AttentionLayout | None:
    """The layout of the model's attention option (None in the config: `gqa`)."""
    return ATTENTION_LAYOUTS.get(type(model.attention or AttentionConfig()))


def hf_family(model) -> str | None:
    """The HF model_type that computes what this model config computes, if there is one."""
    attention, ffn = attention_layout(model), FFN_LAYOUTS.get(type(model.ffn))
    return attention.families.get(ffn.family) if attention and ffn else None
